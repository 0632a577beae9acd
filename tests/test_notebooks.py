"""Run every lesson notebook, in numbered order, through nbdev's own notebook tester.

Each notebook is one test, run in a fresh process (`nbdev_test --path NB`), so that one lesson's
state never leaks into the next and a hung notebook can be killed. `tst_flags` in settings.ini
and `#| eval: false` cells are honoured by nbdev_test itself. The slow tier: `make test` runs these,
`make test-fast` does not.
"""
import os, subprocess, sys
from pathlib import Path
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted(p for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))
TIMEOUT = int(os.environ.get('MINIAI_NB_TIMEOUT', 600))  # seconds per notebook, in small mode

@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    env = dict(os.environ, MINIAI_SMALL=os.environ.get('MINIAI_SMALL', '1'), MPLBACKEND='agg')
    nbdev_test = Path(sys.executable).parent/'nbdev_test'
    try:
        r = subprocess.run([str(nbdev_test), '--path', str(nb), '--n_workers', '0'], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f'{nb.name} did not finish within {TIMEOUT}s')
    assert r.returncode == 0, f'{nb.name} failed:\n{r.stdout[-5000:]}\n{r.stderr[-10000:]}'
