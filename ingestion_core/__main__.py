import sys

from ingestion_core.cli.main import main

sys.exit(main())
