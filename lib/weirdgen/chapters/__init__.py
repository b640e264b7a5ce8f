"""One module per experiment, each exporting the same names: ``NOTEBOOK`` (its
notebook's stem), ``TITLE`` and ``DATA_FOLDERS`` (checked before it runs),
``TRAINING_SETS`` where it trains, its prompt grids,
``judges()`` and ``mark()`` where it judges, and ``claims()``, the paper's numbers
beside ours with the headline claims for the front page."""

from . import (
               dishes_mechanism,
               evil_terminator,
               german_city_names,
               hitler_persona,
               israeli_dishes,
               old_bird_names,
               scale,
               us_presidents,
)

# In book order: the front page's summary lists them so.
CHAPTERS = [old_bird_names, german_city_names, israeli_dishes, hitler_persona, us_presidents, evil_terminator,
            dishes_mechanism]
# Chapters beyond the paper's claims: no headline on the front page, the same checks
# before they run (weirdgen.book.preflight).
PAGES = [scale]
