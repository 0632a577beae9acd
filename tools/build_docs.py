"""Build the docs site into _docs/ with no network and no quarto (`make docs`).

    python tools/build_docs.py [--out _docs]

1. nbdev processes the notebooks (`nbdev.serve.proc_nbs`, into _proc/), with `show_doc` rendering
   tables (`TableRenderer` in tools/nb2sphinx.py);
2. tools/nb2sphinx.py turns the processed notebooks into plain ones (build/docs_src/);
3. Sphinx + myst-nb + furo render them (saved outputs shown, nothing executed), warnings as errors.

Where quarto is installed, `nbdev_docs` builds nbdev's own site from the same notebooks instead.
"""
import argparse, contextlib, os, shutil, sys, time, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import nb2sphinx

class DocsError(Exception): pass

@contextlib.contextmanager
def _table_show_doc():
    "Make `show_doc`'s default renderer the table renderer while nbdev processes the notebooks."
    import nbdev.showdoc
    old = nbdev.showdoc.BasicMarkdownRenderer
    nbdev.showdoc.BasicMarkdownRenderer = nb2sphinx.TableRenderer
    try: yield
    finally: nbdev.showdoc.BasicMarkdownRenderer = old

def _notebook_with(msg):
    "The notebook(s) holding the cell quoted between `---` lines in nbdev's warning `msg`."
    import json
    parts = msg.split('\n---\n')
    src = parts[1].strip() if len(parts) > 1 else ''
    hits = [p.name for p in sorted((ROOT/'nbs').glob('*.ipynb')) if src and any(
        ''.join(c['source']).strip() == src for c in json.loads(p.read_text(encoding='utf-8'))['cells'])]
    return ', '.join(hits) or 'a notebook'

def process_notebooks() -> Path:
    "Run nbdev's processors over nbs/ in this process (so the renderer above applies); returns _proc/."
    from nbdev.serve import proc_nbs
    os.environ.setdefault('MPLBACKEND', 'agg')
    with _table_show_doc(), warnings.catch_warnings():
        # nbdev runs every cell that imports something, to be able to call show_doc. A cell that also
        # computes things would run at docs time (slow, or failing on names defined elsewhere), and
        # breaks quarto's `nbdev_docs` as well: here that is an error, not a warning.
        warnings.filterwarnings('error', message='Found cells containing imports and other code')
        try: return Path(proc_nbs(path=str(ROOT/'nbs'), n_workers=0, force=True))
        except UserWarning as e:
            raise DocsError(f"{e}\nIn {_notebook_with(str(e))}: nbdev executes the cells that import something "
                            "when it builds the docs; move this cell's imports into a cell of their own.") from None
        except Exception as e:
            raise DocsError(f'nbdev could not process the notebooks: {e}\n(cause: {e.__cause__!r})') from e

def build(out=ROOT/'_docs', quiet=True) -> Path:
    t0 = time.time()
    os.chdir(ROOT)  # nbdev finds settings.ini from the working directory
    proc = process_notebooks()
    t1 = time.time()
    # myst-nb writes image files next to Sphinx's output folder, so everything goes under build/docs/
    work, out = ROOT/'build'/'docs', Path(out)
    for d in (work, out): shutil.rmtree(d, ignore_errors=True)  # no stale pages
    pages = nb2sphinx.convert_all(proc, work/'src')
    from sphinx.cmd.build import build_main
    args = ['-W', '--keep-going', '-b', 'html', '-c', str(ROOT/'tools'/'sphinx'), '-d', str(work/'doctrees'),
            str(work/'src'), str(work/'html')] + (['-q'] if quiet else [])
    if build_main(args): raise DocsError('Sphinx failed (warnings are errors): see the messages above')
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(work/'html', out)
    t2 = time.time()
    print(f'docs: {len(pages)} pages in {out}/ (nbdev {t1-t0:.0f}s, sphinx {t2-t1:.0f}s)', flush=True)
    return Path(out)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(ROOT/'_docs'), help='where the site goes (default: _docs)')
    ap.add_argument('--verbose', action='store_true', help="show Sphinx's progress")
    a = ap.parse_args()
    try: build(Path(a.out).resolve(), quiet=not a.verbose)
    except DocsError as e: sys.exit(f'make docs failed: {e}')
