import sys

from ingestion_core.cli import main

sys.exit(main())
