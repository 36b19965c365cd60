"""Online River models that learn from delayed labels, with checkpoints.

Every model speaks the same few verbs: ``predict_one(x)`` / ``score_one(x)`` and ``learn_one(x, y)``;
``to_bytes()`` / ``from_bytes()`` checkpoint them.
"""

import riskmon  # noqa: F401 - installs the loader of the compiled modules (riskmon.accel) first
