"""Run every lesson notebook, in numbered order, through nbdev's own notebook tester.

Each notebook is one test, run in a fresh process (`nbdev_test --path NB`), so that one lesson's
state never leaks into the next and a hung notebook can be killed. `tst_flags` in settings.ini
and `#| eval: false` cells are honoured by nbdev_test itself.
"""
import json, os, re, subprocess, sys
from pathlib import Path
import pytest

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

# ---------------------------------------------------------------------------------------------
# DESIGN.md: later notebooks import only from modules exported earlier, so the arrows point one way.
# A lesson's own appendices (08a, 08b, ... after 08) come after it and serve it: the Learner of 08
# imports the checks of 08b when `fit` runs, so a user gets them by default. Lessons are compared by number.

_IMPORT = re.compile(r'^\s*(?:from\s+(?:miniai)?\.|from\s+miniai\.|import\s+miniai\.)(\w+)', re.M)

def _code(nb): return [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']

def _exporters():
    "{module: the notebook that exports it}, from each notebook's `#| default_exp`"
    res = {}
    for nb in NBS:
        for src in _code(nb):
            m = re.search(r'^#\|\s*default_exp\s+(\S+)', src, re.M)
            if m: res[m.group(1)] = nb
    return res

def _lesson(nb): return int(nb.stem[:2])

def _backward(users, exporters):
    "Each import, in `users` [(name, code, lesson number)], of a module that a later lesson exports (or none does)"
    bad = []
    for name, text, lesson in users:
        for imported in sorted(set(_IMPORT.findall(text))):
            src = exporters.get(imported)
            if src is None: bad.append(f'{name} imports miniai.{imported}, which no notebook exports')
            elif _lesson(src) > lesson: bad.append(f'{name} (lesson {lesson:02d}) imports miniai.{imported}, from the later {src.name}')
    return bad

def test_imports_point_back_to_earlier_lessons():
    exporters = _exporters()
    assert {'learner', 'checks', 'cli', '__main__'} <= set(exporters), exporters
    users = [(nb.name, '\n'.join(_code(nb)), _lesson(nb)) for nb in NBS]
    for mod in (ROOT/'miniai').glob('*.py'):  # the package: a module's imports, against the notebook it comes from
        if mod.stem in exporters: users.append((f'miniai/{mod.name}', mod.read_text(), _lesson(exporters[mod.stem])))
    bad = _backward(users, exporters)
    assert not bad, '\n'.join(bad)

def test_backward_import_is_found():
    exporters = _exporters()
    lazy = 'def fit(self):\n    from miniai.checks import check_fit'
    assert _backward([('08_x', lazy, 8), ('09_x', 'from .checks import check_fit', 9)], exporters) == []
    assert _backward([('03_x', 'import torch\nfrom miniai.learner import Learner', 3), ('07_x', 'from .nothing import x', 7)], exporters) == [
        '03_x (lesson 03) imports miniai.learner, from the later 08_learner.ipynb', '07_x imports miniai.nothing, which no notebook exports']
