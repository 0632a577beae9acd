# Sphinx configuration of the offline docs site (`make docs`, see tools/build_docs.py).
# Metadata comes from settings.ini, like everything else in the project.
import configparser, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))  # mathml.py, the renderer for formulas

_root = Path(__file__).resolve().parents[2]
_cp = configparser.ConfigParser(); _cp.read(_root/'settings.ini')
_s = _cp['DEFAULT']

project = _s['title']
author = _s['author']
copyright = _s['copyright']
release = version = _s['version']

extensions = ['myst_nb', 'mathml']
html_math_renderer = 'mathml'  # MathML made at build time: MathJax would need its CDN
exclude_patterns = ['_build', '**.ipynb_checkpoints']
root_doc = 'index'

# The saved outputs are the content: nothing is executed here.
nb_execution_mode = 'off'
nb_merge_streams = True
myst_enable_extensions = ['attrs_block', 'colon_fence', 'dollarmath', 'amsmath']
myst_heading_anchors = 3

html_theme = 'furo'
html_title = project
html_short_title = project
html_static_path = [str(Path(__file__).parent/'_static')]
html_css_files = ['miniai.css']
html_favicon = str(Path(__file__).parent/'_static'/'favicon.svg')
html_copy_source = False
html_show_sourcelink = False
html_show_sphinx = False
html_theme_options = {'top_of_page_buttons': []}  # their "edit" links would name the page, not the notebook
pygments_style = 'friendly'
