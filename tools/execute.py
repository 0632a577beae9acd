"""Run notebooks on the full data and save their outputs in place (the committed outputs).

    .venv/bin/python tools/execute.py nbs/03_minibatch_training.ipynb [...]

Uses a real Jupyter kernel (nbclient), so progress bars and plots are saved as a reader sees them.
MINIAI_SMALL is removed from the environment: committed outputs are full-data results.
"""
import os, subprocess, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

def execute(path, timeout=1800):
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    os.environ.pop('MINIAI_SMALL', None)
    t = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}).execute()
    nbformat.write(nb, path)
    print(f'{path.name}: {time.time()-t:.0f}s', flush=True)

if __name__ == '__main__':
    for p in sys.argv[1:]: execute(p)
    subprocess.run([str(Path(sys.executable).parent/'nbdev_clean')], check=True)
