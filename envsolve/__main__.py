from envsolve.cli import entry

entry()
