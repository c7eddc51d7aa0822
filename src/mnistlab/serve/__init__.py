"""A trained run at work: `Predictor` (a run folder's model with its preprocessing, as
`mnistlab predict` and the server use it) and `mnistlab serve`'s web app (`serve.app`,
imported only by the command, since it needs Starlette)."""

from mnistlab.serve.predictor import Prediction, Predictor

__all__ = ["Prediction", "Predictor"]
