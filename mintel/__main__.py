from mintel.cli import main

raise SystemExit(main())
