"""The package is exactly what the notebooks export, the notebooks are clean, README matches index.ipynb.

Export and clean run on a copy of the tree, so the test never changes the working tree.
"""
import shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def _snapshot(root):
    files = list((root/'miniai').glob('*.py')) + list((root/'nbs').glob('*.ipynb'))
    return {str(p.relative_to(root)): p.read_bytes() for p in files}

def _copy_tree(dst):
    for name in ('settings.ini', 'setup.py', 'README.md'): shutil.copy(ROOT/name, dst/name)
    for d in ('nbs', 'miniai', 'tools'):
        shutil.copytree(ROOT/d, dst/d, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints', '_proc'))

def test_export_and_clean_change_nothing(tmp_path):
    _copy_tree(tmp_path)
    before = _snapshot(tmp_path)
    for cmd in ('nbdev_export', 'nbdev_clean'):
        r = subprocess.run([str(BIN/cmd)], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, f'{cmd} failed: {r.stderr}'
    after = _snapshot(tmp_path)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, (f'nbdev_export/nbdev_clean change {changed}: edit the notebooks, run '
                         '`make export`, and commit the notebooks with the generated package')

def test_readme_matches_index():
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
