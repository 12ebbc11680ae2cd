"""reference: gdcore trained side by side with Keras (TensorFlow) and scikit-learn, compared at every epoch.

Every engine starts from gdcore's initial weights and sees the same batches
(one imposed permutation per epoch). After each epoch the weights, the loss
history and the predictions are compared, and the results are tidy pandas
DataFrames.

Modules, one job each:

====================  =============================================================
``configs``           ``Config``, ``default_configs()`` (regression, then classification), ``full_grid()``
``gdcore_driver``     train a copy of a gdcore model on imposed orders
``keras_driver``      ``to_keras``, ``from_keras``, ``keras_dtype``, ``run_keras`` (TensorFlow imported lazily)
``sklearn_driver``    ``SGDRegressor``, ``MLPRegressor``, ``LinearRegression``, ``SGDClassifier``,
                      ``MLPClassifier``, ``LogisticRegression``; the named convention gaps
``trajectory``        ``Trajectory``: one engine's run, epoch by epoch
``compare``           ULP / relative differences, ``compare()``, ``Comparison``, tolerances (default, classification)
``runner``            ``run_config``: a configuration through every engine
``report``            the printed table and the report folder (CSV, Markdown, PNG)
``testing``           ``assert_parity`` for users' pytest suites
``__main__``          ``python -m reference`` / ``gdcore-reference``
====================  =============================================================
"""

from reference.compare import (CLASSIFICATION_TOLERANCES, DEFAULT_TOLERANCES, Comparison, Tolerance, bit_identical,
                               compare, relative_difference, ulp_distance, within_tolerance)
from reference.configs import Config, classification_configs, default_configs, full_grid
from reference.errors import Unsupported
from reference.gdcore_driver import clone_model, run_gdcore
from reference.keras_driver import from_keras, keras_dtype, run_keras, to_keras
from reference.runner import ConfigResult, run_config, run_configs
from reference.testing import assert_config_parity, assert_parity
from reference.trajectory import Trajectory

__all__ = [
    "CLASSIFICATION_TOLERANCES", "DEFAULT_TOLERANCES", "Comparison", "Config", "ConfigResult", "Tolerance", "Trajectory",
    "Unsupported", "assert_config_parity", "assert_parity", "bit_identical", "classification_configs", "clone_model",
    "compare", "default_configs", "from_keras", "full_grid", "keras_dtype", "relative_difference", "run_config", "run_configs", "run_gdcore",
    "run_keras", "to_keras", "ulp_distance", "within_tolerance",
]
