"""The tolerances of the suite's own gradient checks (not the users' defaults).

``gradcheck``'s defaults (rtol 1e-3, atol 1e-5, PyTorch's) are meant for users' checks of
any function.  The suite checks the library's own formulas in float64, where central
differences with eps = 1e-6 are accurate to ≈ 1e-10 (truncation O(eps²) plus rounding
O(1e-16/eps)), so it uses tolerances about 1000× tighter: a formula wrong by 1e-5 relative
fails (``tests/test_tolerances.py`` shows it).  A check that needs a looser tolerance for
an ill-conditioned op passes its own, with the reason beside it.
"""

from __future__ import annotations

import functools

from tinygrad_edu.testing import gradcheck as _gradcheck

RTOL = 1e-6
ATOL = 1e-8

#: ``gradcheck`` with the suite's tolerances (explicit ``rtol``/``atol`` still override).
gradcheck = functools.partial(_gradcheck, rtol=RTOL, atol=ATOL)
