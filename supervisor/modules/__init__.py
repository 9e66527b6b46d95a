"""The modules a template may enable (`fs`, `database`, `exec`, `fetch`), each scoped by a
capability: what a script can reach outside its sandbox, and nothing more.

Each module has a host half here (plain Python, one file per module, knowing nothing of the
sandbox or the store: it is handed a config, a deadline and a stop check) and a guest half
(`guest.js`) that gives it Node's names. `grants.py` builds a session's host functions and
module loader from its template's modules and capabilities.
"""
