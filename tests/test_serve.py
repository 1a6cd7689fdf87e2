"""The HTTP service in-process (FastAPI's test client): every endpoint and every refusal."""

import io
import json

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
from fastapi.testclient import TestClient

from tinyfer.inference.predict import Prediction, Recognizer
from tinyfer.inference.serve import ServeConfig, create_app


def _client(**kw) -> TestClient:
    return TestClient(create_app(ServeConfig(**kw)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client():
    return _client()


def _jpeg(image) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_health_ready_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["model"] == "accurate.onnx"
    models = client.get("/v1/models").json()
    assert models["labels"] == list(Recognizer().labels) and models["img_size"] == 48
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


def test_predict_gives_what_recognizer_gives(client, mug_frame):
    data = mug_frame.read_bytes()
    gray = np.full((120, 160), 128, np.uint8)
    png = cv2.imencode(".png", gray)[1].tobytes()
    files = [("files", ("mug.jpg", data, "image/jpeg")), ("files", ("gray.png", png, "image/png"))]
    done = client.post("/v1/predict?top_k=2", files=files)
    assert done.status_code == 200, done.text
    mug, blank = done.json()["results"]
    assert mug["file"] == "mug.jpg" and blank == {"file": "gray.png", "faces": []}
    (face,) = mug["faces"]
    (expected,) = Recognizer().predict(data)
    assert {k: v for k, v in face.items() if k != "top"} == json.loads(
        json.dumps(expected.to_dict()))  # fmt: skip
    # The service's JSON turns back into the objects Recognizer gives.
    back = Prediction.from_dict(face)
    assert back.box == expected.box and back.label == expected.label
    assert back.probabilities == pytest.approx(expected.probabilities)
    assert np.allclose(back.landmarks, expected.landmarks, atol=0.05)
    assert [t["label"] for t in face["top"]] == sorted(
        expected.probabilities, key=expected.probabilities.get, reverse=True)[:2]  # fmt: skip
    raw = client.post("/v1/predict?detector=haar", content=data,
                      headers={"content-type": "image/jpeg"})  # fmt: skip
    assert raw.status_code == 200 and len(raw.json()["results"][0]["faces"]) == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 400, "no image in the request"),
        (b"this is not an image", 422, "not an image file"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 40, 422, "upload"),
    ],
)
def test_bad_uploads_get_a_4xx_naming_the_problem(client, body, status, message):
    done = client.post("/v1/predict", content=body, headers={"content-type": "image/jpeg"})
    assert done.status_code == status and message in done.json()["error"], done.text
    assert "Traceback" not in done.text and set(done.json()) == {"error"}


@pytest.mark.parametrize(
    ("url", "body", "kind", "status", "message"),
    [
        ("/v1/predict", b"garbage", "multipart/form-data", 400, "boundary"),
        ("/v1/predict?min_face=5", b"x", "image/png", 422, "query.min_face: Input should be less"),
        ("/v1/predict?detector=dlib", b"x", "image/png", 422, "query.detector"),
        ("/v1/predict/video?every=0", b"x", "video/mp4", 422, "query.every"),
        ("/v1/nothing", b"", "image/png", 404, "Not Found"),
    ],
)
def test_every_refusal_has_the_same_json_shape(client, url, body, kind, status, message):
    done = client.post(url, content=body, headers={"content-type": kind})
    assert done.status_code == status and set(done.json()) == {"error"}, done.text
    assert message in done.json()["error"]


def test_truncated_upload_is_named_in_a_multipart_request(client, mug_frame):
    cut = mug_frame.read_bytes()[:5000]
    done = client.post("/v1/predict", files=[("files", ("cut.jpg", cut, "image/jpeg"))])
    assert done.status_code == 422 and "truncated" in done.json()["error"], done.text


def test_limits_refuse_large_requests_and_images_before_decoding():
    small = _client(max_bytes=10_000, max_pixels=100 * 100)
    big = small.post("/v1/predict", content=b"x" * 20_000, headers={"content-type": "image/png"})
    assert big.status_code == 413 and "limit of" in big.json()["error"]
    png = cv2.imencode(".png", np.zeros((200, 200), np.uint8))[1].tobytes()
    assert len(png) < 10_000
    wide = small.post("/v1/predict", content=png, headers={"content-type": "image/png"})
    assert wide.status_code == 413 and "too large" in wide.json()["error"]
    # Many small files that each decode to many pixels: held to the limit all together.
    some = [("files", (f"{i}.png", png, "image/png")) for i in range(3)]
    sum_limit = _client(max_pixels=2 * 200 * 200 + 1, max_files=3)
    many = sum_limit.post("/v1/predict", files=some)
    assert many.status_code == 413 and "2.png: image too large" in many.json()["error"]
    too_many = sum_limit.post("/v1/predict", files=some + some[:1])
    assert too_many.status_code == 413 and "4 images in one request" in too_many.json()["error"]
    # A body without Content-Length is counted as it arrives.
    chunks = (b"x" * 4_000 for _ in range(5))
    streamed = small.post("/v1/predict", content=chunks, headers={"content-type": "image/png"})
    assert streamed.status_code == 413


def test_api_key_guards_everything_but_health(mug_frame):
    guarded = _client(api_key="s3cret")
    assert guarded.get("/healthz").status_code == 200 and guarded.get("/readyz").status_code == 200
    assert guarded.get("/v1/models").status_code == 401
    assert guarded.get("/v1/models", headers={"x-api-key": "wrong"}).status_code == 401
    assert guarded.get("/v1/models", headers={"x-api-key": "s3cret"}).status_code == 200
    bearer = {"authorization": "Bearer s3cret", "content-type": "image/jpeg"}
    done = guarded.post("/v1/predict", content=mug_frame.read_bytes(), headers=bearer)
    assert done.status_code == 200


def test_full_pool_answers_503_with_retry_after_and_slow_work_504(mug_frame):
    client = _client(workers=1, queue=0)
    pool = client.app.state.pool
    assert pool.slots.acquire(blocking=False)  # the one slot, taken
    busy = client.post("/v1/predict", content=mug_frame.read_bytes(),
                       headers={"content-type": "image/jpeg"})  # fmt: skip
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    pool.slots.release()
    slow = _client(timeout=0.001).post("/v1/predict", content=mug_frame.read_bytes(),
                                        headers={"content-type": "image/jpeg"})  # fmt: skip
    assert slow.status_code == 504 and "took over" in slow.json()["error"]


def test_video_is_streamed_one_line_per_frame(client, tmp_path, mug_frame, write_video):
    frame = cv2.resize(cv2.imread(str(mug_frame)), (320, 320))
    clip = write_video(tmp_path / "clip.avi", [frame] * 6)
    done = client.post("/v1/predict/video?every=2", content=clip.read_bytes(),
                       headers={"content-type": "video/x-msvideo"})  # fmt: skip
    assert done.status_code == 200 and done.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in done.text.splitlines()]
    assert [r["frame"] for r in lines] == [0, 2, 4] and all(len(r["faces"]) == 1 for r in lines)
    assert {r["faces"][0]["track"] for r in lines} == {1}  # one face, one track
    limited = client.post("/v1/predict/video?max_frames=2", content=clip.read_bytes())
    assert len(limited.text.splitlines()) == 2
    bad = client.post("/v1/predict/video", content=b"not a video at all")
    assert bad.status_code == 422 and "video" in bad.json()["error"]


def test_uploads_stay_in_memory():
    from starlette.formparsers import MultiPartParser

    create_app(ServeConfig(max_bytes=30 * 1024 * 1024))
    assert MultiPartParser.spool_max_size > 30 * 1024 * 1024
    assert io.BytesIO  # the video path uses a memfd, checked by the streaming test


def test_page_and_live_stream(mug_frame):
    client = _client(api_key="k")
    page = client.get("/")
    assert page.status_code == 200 and "getUserMedia" in page.text
    assert "<script src" not in page.text and "<link" not in page.text  # works with no internet
    with client.websocket_connect("/v1/stream?api_key=k") as ws:
        ws.send_bytes(mug_frame.read_bytes())
        (face,) = ws.receive_json()["faces"]
        assert face["label"] in Recognizer().labels
        ws.send_bytes(mug_frame.read_bytes())
        (again,) = ws.receive_json()["faces"]
        assert face["track"] == again["track"] == 1 and again["smoothed"]["label"]
        ws.send_bytes(b"junk")
        assert "frame: not an image file" in ws.receive_json()["error"]
    with _client(max_bytes=1000).websocket_connect("/v1/stream") as ws:
        ws.send_bytes(b"x" * 2000)
        assert "frame over the limit" in ws.receive_json()["error"]
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()


def _y4m(path, frame, count: int = 30):
    """A Y4M clip of ``frame`` (BGR, even sides) for Chromium's fake camera."""
    h, w = frame.shape[:2]
    yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(count):
            f.write(b"FRAME\n" + yuv)
    return path


@pytest.fixture
def live_server(tmp_path):
    """The service on a free loopback port, in a thread; yields its address."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ServeConfig()), host="127.0.0.1",
                                           port=port, log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the service did not start"
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


@pytest.mark.slow
def test_the_page_in_a_real_browser(live_server, mug_frame, tmp_path):
    """Debian's Chromium, driven by Selenium: an uploaded photo comes back annotated, and the
    webcam mode (Chromium's fake camera showing the MUG face) draws faces on live frames.
    Screenshots go to ./artifacts/ (not committed)."""
    import shutil
    from pathlib import Path

    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_bin):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        )
    frame = cv2.resize(cv2.imread(str(mug_frame)), (480, 480))
    camera = _y4m(
        tmp_path / "face.y4m", cv2.copyMakeBorder(frame, 0, 0, 80, 80, cv2.BORDER_CONSTANT)
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={camera}",
                 "--window-size=1100,900"):  # fmt: skip
        options.add_argument(flag)
    artifacts = Path(__file__).parents[1] / "artifacts"
    artifacts.mkdir(exist_ok=True)
    browser = webdriver.Chrome(service=webdriver.ChromeService(driver_bin), options=options)
    try:
        browser.get(live_server)
        browser.find_element(By.ID, "pick").send_keys(str(mug_frame))
        canvas = WebDriverWait(browser, 60).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "#results canvas[data-faces]"))  # fmt: skip
        assert canvas.get_attribute("data-faces") == "1"
        assert canvas.get_attribute("data-labels") in Recognizer().labels
        assert "1 face(s)" in browser.find_element(By.ID, "results").text
        browser.save_screenshot(str(artifacts / "page_images.png"))

        browser.find_element(By.ID, "tab-camera").click()
        browser.find_element(By.ID, "start").click()
        overlay = browser.find_element(By.ID, "overlay")
        WebDriverWait(browser, 60).until(
            lambda b: int(overlay.get_attribute("data-frames") or 0) >= 3
        )
        status = browser.find_element(By.ID, "status").text
        assert "1 face(s)" in status and "frames/s" in status, status
        # one face on camera: one track, kept over the frames, on the live timeline
        timeline = browser.find_element(By.ID, "timeline")
        assert timeline.get_attribute("data-tracks") == "1"
        browser.save_screenshot(str(artifacts / "page_webcam.png"))
    finally:
        browser.quit()
