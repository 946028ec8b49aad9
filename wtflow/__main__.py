from wtflow.cli import main

raise SystemExit(main())
