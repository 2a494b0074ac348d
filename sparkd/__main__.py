from sparkd.cli import main

raise SystemExit(main())
