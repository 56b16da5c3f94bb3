"""Model artifacts in a safe format: scikit-learn estimators as ``skops`` files, never pickles.

A service never unpickles user bytes. A skops file is a zip of JSON that names every type it
would construct; :func:`load_estimator` first lists the types skops does not trust by default
(``skops.io.get_untrusted_types``), refuses the file unless every one of them is on
:data:`TRUSTED_TYPES`, and only then loads it with exactly that trust. Anything else (a pickle,
a joblib file, random bytes, a skops file naming other types) is a :class:`ArtifactError`.

The monitor scores in the engine: a linear estimator's coefficients become SQL, so only
estimators with ``coef_`` and ``intercept_`` that predict ``intercept + coef · x`` are accepted.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from typing import Any

# Linear regressors whose predict() is intercept_ + X @ coef_ (what the monitor turns into SQL).
LINEAR_ESTIMATORS = (
    "sklearn.linear_model._base.LinearRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.linear_model._coordinate_descent.Lasso",
    "sklearn.linear_model._coordinate_descent.ElasticNet",
    "sklearn.linear_model._huber.HuberRegressor",
    "sklearn.linear_model._bayes.BayesianRidge",
)
# Types a model file may name beyond skops' own default trust (numpy arrays, builtins, ...).
TRUSTED_TYPES = list(LINEAR_ESTIMATORS)
MAX_ARTIFACT_BYTES = 5 << 20


class ArtifactError(ValueError):
    """The model file is not a safe, supported model; the message says what to send instead."""


@dataclass(frozen=True)
class LoadedModel:
    estimator: Any
    type_name: str
    intercept: float
    coef: list[float]
    sha256: str

    @property
    def linear(self) -> dict[str, Any]:
        return {"intercept": self.intercept, "coef": self.coef}


def dumps(estimator: Any) -> bytes:
    """An estimator as skops bytes (the notebook side)."""
    import skops.io as sio

    return sio.dumps(estimator)


def load_estimator(data: bytes) -> LoadedModel:
    """Validate and load skops bytes; raises :class:`ArtifactError` for anything unsafe or unsupported."""
    import skops.io as sio

    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ArtifactError("the model file is empty: send the estimator as skops bytes (skops.io.dumps(estimator))")
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"the model file is larger than {MAX_ARTIFACT_BYTES >> 20} MiB")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ArtifactError(
            "the model file is not a skops file (pickles and joblib files are refused: they run code when loaded); "
            "save it with skops.io.dumps(estimator)"
        )
    try:
        untrusted = sio.get_untrusted_types(data=bytes(data))
    except Exception as exc:
        raise ArtifactError(f"the model file is not a valid skops file ({type(exc).__name__}): save it with skops.io.dumps(estimator)") from exc
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ArtifactError(f"the model file names types the data room does not load: {', '.join(refused)}; supported estimators: {', '.join(n.rsplit('.', 1)[1] for n in LINEAR_ESTIMATORS)}")
    try:
        estimator = sio.loads(bytes(data), trusted=list(untrusted))
    except Exception as exc:
        raise ArtifactError(f"the model file could not be loaded ({type(exc).__name__}: {exc})") from exc
    type_name = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
    if type_name not in LINEAR_ESTIMATORS:
        raise ArtifactError(f"{type(estimator).__name__} is not a supported estimator: the monitor scores linear regressors ({', '.join(n.rsplit('.', 1)[1] for n in LINEAR_ESTIMATORS)})")
    coef = getattr(estimator, "coef_", None)
    intercept = getattr(estimator, "intercept_", None)
    if coef is None or intercept is None:
        raise ArtifactError(f"{type(estimator).__name__} is not fitted: fit it before registering")
    import numpy as np

    coef_arr = np.asarray(coef, dtype=float)
    if coef_arr.ndim != 1 or not np.all(np.isfinite(coef_arr)) or not np.isfinite(float(intercept)):
        raise ArtifactError("the estimator must predict one target from its features with finite coefficients")
    return LoadedModel(estimator, type_name, float(intercept), [float(c) for c in coef_arr], hashlib.sha256(data).hexdigest())
