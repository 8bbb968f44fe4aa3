"""The landmark models a user would pick instead of this kit's, run on the same photographs:
MediaPipe's Face Mesh (``face_landmark.tflite``, 468 points, from the ``mediapipe==0.10.21``
wheel the detector comes from) and dlib's 68-point shape predictor (optional: ``make dlib``).
Each maps an RGB image to ``(F, N, 2)`` faces in a scheme's points, like the kit's pipeline.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from lib.deploy.detector_files import DEFAULT_DETECTOR, MEDIAPIPE_LANDMARKS
from lib.deploy.run_model import CROP_UNIT, MAX_FACES, BlazeFaceDetector, TFLiteNet, crop_matrix
from lib.paths import resolve
from lib.schemes import correspondence, load_scheme

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"  # in face_recognition_models
MESH_POINTS = 468
ROI_SCALE = 1.5  # MediaPipe's ROI: 1.5 x the longer side of the face box, square
EYE_CORNERS = (33, 263)  # mesh vertices whose line sets the ROI's rotation (right, left outer eye corner)


def eye_line_degrees(points: np.ndarray, start: int, end: int) -> float:
    """The angle of the line from point ``start`` to point ``end`` of (P, 2) image points, in the
    sense :func:`lib.deploy.run_model.crop_matrix` rotates by: a crop at that rotation shows the
    line horizontal, ``start`` on the left."""
    dx, dy = points[end] - points[start]
    return float(np.degrees(np.arctan2(dy, dx)))


class MediaPipeFaceMesh:
    """MediaPipe's Face Mesh on each BlazeFace detection, as its image graph runs it: a square
    region of interest 1.5 x the face box's longer side, the crop resized to 192 px in [0, 1],
    468 points back in the image. The graph rotates the first region by the detector's eye
    keypoints; the kit's detector returns boxes only, so the first pass is upright and a second
    pass takes MediaPipe's tracking region (the mesh's box, rotated by its outer eye corners).
    The 468 points become iBUG-68 by :func:`lib.schemes.correspondence`, then the scheme's."""

    def __init__(
        self,
        path: str | Path = MEDIAPIPE_LANDMARKS,
        detector: BlazeFaceDetector | None = None,
        scheme: str = "ivslab51",
        num_threads: int = 2,
        max_faces: int = MAX_FACES,
    ):
        """``detector`` None: the full-range BlazeFace file at its MediaPipe threshold."""
        self.net = TFLiteNet(resolve(path), num_threads)
        self.size = self.net.input_shape[1]
        self.detector = detector or BlazeFaceDetector(resolve(DEFAULT_DETECTOR), num_threads=num_threads)
        self.scheme = scheme
        self.max_faces = max_faces
        self.vertices, self.weights = correspondence("mediapipe468_to_ibug68")

    def mesh(self, image: np.ndarray, centre: np.ndarray, side: float, rotation: float = 0.0) -> np.ndarray:
        """(468, 2) mesh points in image pixels from the square ROI of ``side`` px at ``centre``."""
        matrix = crop_matrix(centre, side / CROP_UNIT, self.size, rotation)
        crop = cv2.warpAffine(image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        outputs = self.net(crop[None].astype(np.float32) / 255.0)
        points = next(o for o in outputs if o.size == MESH_POINTS * 3).reshape(MESH_POINTS, 3)[:, :2].astype(np.float64)
        points -= 0.5  # the model's continuous coordinates (0 = the crop's left edge) -> pixel centres
        inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
        return points @ inverse[:, :2].T + inverse[:, 2]

    def face_points(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(N, 2) scheme points of the face in a detection (its box, the first four values)."""
        mesh = self.mesh(image, (box[:2] + box[2:4]) / 2, ROI_SCALE * max(box[2] - box[0], box[3] - box[1]))
        low, high = mesh.min(axis=0), mesh.max(axis=0)
        mesh = self.mesh(image, (low + high) / 2, ROI_SCALE * max(high - low), eye_line_degrees(mesh, *EYE_CORNERS))
        ibug = (mesh[self.vertices] * self.weights[..., None]).sum(axis=1)
        return load_scheme(self.scheme).points_from_ibug68(ibug)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (F, N, 2) faces, the likeliest ``max_faces`` detections."""
        boxes, _ = self.detector(image)
        faces = [self.face_points(image, box) for box in boxes[: self.max_faces]]
        return np.array(faces).reshape(len(faces), load_scheme(self.scheme).num_points, 2)


class DlibLandmarks:
    """dlib's HOG face detector and 68-point shape predictor (the ``face_recognition_models``
    file), the classic CPU baseline; install with ``make dlib``."""

    def __init__(self, scheme: str = "ivslab51", upsample: int = 1, max_faces: int = MAX_FACES):
        try:
            import dlib
        except ImportError as error:
            raise ImportError(f"dlib's landmarks need dlib and face_recognition_models: `make dlib` installs them ({error})") from error
        models = importlib.util.find_spec("face_recognition_models")
        if models is None:
            raise ImportError("dlib's 68-point model comes from face_recognition_models: `make dlib` installs it")
        # the package's own __init__ imports pkg_resources, gone from recent setuptools: find its file directly
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(Path(models.origin).parent / "models" / PREDICTOR_FILE))
        self.scheme, self.upsample, self.max_faces = scheme, upsample, max_faces

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (F, N, 2) faces (dlib's pixel indices are pixel centres)."""
        rectangles, scores, _ = self.detector.run(np.ascontiguousarray(image), self.upsample)
        order = np.argsort(-np.asarray(scores, dtype=np.float64))[: self.max_faces]
        faces = [np.array([[p.x, p.y] for p in self.predictor(image, rectangles[k]).parts()], dtype=np.float64) for k in order]
        return load_scheme(self.scheme).points_from_ibug68(np.array(faces).reshape(len(faces), 68, 2))
