"""Where the tests find the repository's files and the team's shared data (../shared, beside the checkout)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "images"
SHARED = REPO.parent / "shared"
