"""Where a runner's time goes: `python bench/profile_runner.py miniai --model cnn` runs bench/run.py under cProfile.

Prints the time spent in each part (torch's own functions, the Learner and its callbacks, fastprogress, the data
path, the rest) and the functions with the most time of their own. cProfile slows Python code down, so the parts
written in Python look bigger than they are: read it for where the time goes, and time the changes with bench.py.
Run it with a terminal as standard output (or under `script -qc`) to include the progress bars' cost.
"""
import cProfile, pstats, sys
from collections import defaultdict
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import run

def part(fn, name):
    if fn == '~': return 'torch and builtins (C)' if not name.startswith('<method') else 'torch and builtins (C)'
    for key, lbl in (('miniai/learner', 'miniai.learner (Learner, callbacks)'), ('miniai/sgd', 'miniai.sgd (scheduler callback)'),
                     ('miniai/datasets', 'miniai.datasets (data path)'), ('miniai/conv', 'miniai.conv (to_device)'),
                     ('fastprogress', 'fastprogress (bars)'), ('torch/optim', 'torch.optim (Python)'),
                     ('torch/', 'torch (Python)'), ('bench/run', 'bench/run.py'), ('datasets/', 'Hugging Face datasets'),
                     ('PIL', 'PIL'), ('matplotlib', 'matplotlib')):
        if key in fn: return lbl
    return 'other Python'

if __name__ == '__main__':
    prof = cProfile.Profile()
    prof.runcall(run.main, sys.argv[1:])
    st = pstats.Stats(prof)
    parts = defaultdict(float)
    for (fn, line, name), (cc, nc, tt, ct, callers) in st.stats.items(): parts[part(fn, name)] += tt
    total = sum(parts.values())
    print(f'\nown time by part (total {total:.2f}s under cProfile):')
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]): print(f'  {v:7.2f}s {100*v/total:5.1f}%  {k}')
    print()
    st.sort_stats('tottime').print_stats(25)
    print('the Learner, its callbacks and the data path, by cumulative time:')
    st.sort_stats('cumulative').print_stats(r'miniai/(learner|sgd|conv|datasets)|fastprogress', 30)
