import pytest

from tinyfer.inference.bench import demo_frame, measure_speed, median_ms


def test_median_ms_times_what_it_is_given():
    import time

    assert median_ms(lambda: time.sleep(0.01), repeats=3, warmup=0) == pytest.approx(10, abs=8)


def test_speed_figures_on_the_drawn_face(onnx_model):
    s = measure_speed(onnx_model, threads=1, repeats=2, batch=4)
    assert s.faces_found == 1 and s.image_shape == (896, 896, 3)
    assert s.threads == 1 and s.batch == 4
    assert 0 < s.classify_ms < s.end_to_end_ms
    assert s.detect_ms > 0 and s.batch_faces_per_s > 0
    assert demo_frame(size=128).shape == (128, 128, 3)
