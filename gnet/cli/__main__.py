from gnet.cli import main

raise SystemExit(main())
