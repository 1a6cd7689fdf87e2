"""How a model's faces are cut, as its file records it: :class:`FaceCut`, which preparing a
dataset and recognising a photo both call, so that both cut a face the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tinyfer.core.config import DataConfig
from tinyfer.core.faces.crop import crop_face
from tinyfer.core.faces.face import Face
from tinyfer.core.faces.geometry import TEMPLATE, Template, cut_face


@dataclass(frozen=True)
class FaceCut:
    """``template``: faces mapped by their landmarks onto ``template`` (a face without them by
    its detector's box framing); ``margin``: the older cut, the box widened by ``margin``, eyes
    levelled with ``align``. ``detector`` is the one that found the training faces."""

    geometry: Literal["template", "margin"] = "margin"
    template: Template = TEMPLATE
    margin: float = 0.1
    align: bool = False
    detector: str | None = None

    @classmethod
    def of(cls, cfg: DataConfig, detector: str | None) -> FaceCut:
        """The cut of a training config's faces, found by ``detector``."""
        if cfg.geometry == "template":
            return cls("template", detector=detector)
        return cls("margin", margin=cfg.margin, align=cfg.align, detector=detector)

    @classmethod
    def from_meta(cls, preprocessing: dict[str, Any]) -> FaceCut:
        """The cut a model file's ``preprocessing`` records. Files made before the template
        geometry have no ``geometry`` key and used the margin cut (margin 0.1, no alignment
        unless recorded)."""
        detector = preprocessing.get("detector")
        if preprocessing.get("geometry", "margin") == "template":
            points = preprocessing.get("template", TEMPLATE)
            return cls("template", tuple((float(x), float(y)) for x, y in points),
                       detector=detector)  # fmt: skip
        return cls("margin", margin=float(preprocessing.get("margin", 0.1)),
                   align=bool(preprocessing.get("align", False)), detector=detector)  # fmt: skip

    def to_meta(self) -> dict[str, Any]:
        """What a model file records (:meth:`from_meta` reads it back); pixels are gray and
        scaled to [0, 1] by the model's input."""
        out = {"gray": True, "scale": 1 / 255, "geometry": self.geometry, "detector": self.detector}
        if self.geometry == "template":
            return {**out, "template": [list(p) for p in self.template]}
        return {**out, "margin": self.margin, "align": self.align}

    def data_config(self, **fields: Any) -> DataConfig:
        """A DataConfig whose faces are cut this way, with the other ``fields`` given."""
        if self.geometry == "template":
            return DataConfig(geometry="template", **fields)
        return DataConfig(geometry="margin", margin=self.margin, align=self.align, **fields)

    def cut(
        self, gray: np.ndarray, face: Face, size: int, framing: str, *, with_valid: bool = False
    ):
        """The ``(size, size)`` crop of ``face`` in ``gray``; ``framing`` is the box framing
        for a face without landmarks (a detector's name, or ``whole``: the face is the whole
        image). ``with_valid``: also the mask of the crop's pixels inside the image."""
        if self.geometry == "margin":
            crop = crop_face(gray, face, size=size, margin=self.margin, align=self.align)
            return (crop, np.full_like(crop, 255)) if with_valid else crop
        return cut_face(gray, face, size, framing, with_valid=with_valid, template=self.template)
