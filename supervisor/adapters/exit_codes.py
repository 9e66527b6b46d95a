"""Process exit codes of the CLI, one meaning each."""

OK = 0
SCRIPT_ERROR = 1  # the script threw, or the API answered with an error
USAGE = 2  # bad arguments or unusable input; nothing ran
LIMIT = 3  # a limit stopped the script
INTERRUPTED = 130  # Ctrl-C

# The status of an outcome decides the exit code of a script run.
BY_STATUS = {
    "ok": OK,
    "error": SCRIPT_ERROR,
    "crashed": SCRIPT_ERROR,
    "timeout": LIMIT,
    "limit_exceeded": LIMIT,
    "cancelled": INTERRUPTED,
}
