"""Process exit codes of the CLI, one meaning each, and the one sentence every help text that
lists them uses."""

OK = 0
SCRIPT_ERROR = 1  # the script threw, or the daemon answered with an error
USAGE = 2  # bad arguments or unusable input; nothing ran
LIMIT = 3  # a limit stopped the script
NO_DAEMON = 4  # no daemon answered: nothing listens at the address, an unknown host, a timeout
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

SUMMARY = ("Exit codes: 0 ok, 1 script error, 2 usage error, 3 a limit stopped the script, 4 no\n"
           "daemon answered, 130 interrupted (1 also when a daemon answered with an error; nothing\n"
           "ran or was sent on 2).")
