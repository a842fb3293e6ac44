from envsolve.cli import main

raise SystemExit(main())
