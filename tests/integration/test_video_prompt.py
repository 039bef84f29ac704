"""Dream Video over /prompt: a clip made by core nodes comes back frame for frame; an interrupt in the middle
of the clip stops it at once and writes nothing; the next prompt runs."""
from graphs import node
from run_workflow import execution_error, output_images


def video_graph(object_info, layers: str, image: str, prefix: str, frames: int, **dream) -> dict:
    return {"1": node(object_info, "LoadImage", image=image),
            "2": node(object_info, "RepeatImageBatch", image=["1", 0], amount=frames),
            "3": node(object_info, "ReverieLoadCNN"),
            "4": node(object_info, "ReverieSelectLayers", cnn=["3", 0], layers=layers),
            "5": node(object_info, "ReverieDreamVideo", frames=["2", 0], layers=["4", 0], **dream),
            "6": node(object_info, "SaveImage", images=["5", 0], filename_prefix=prefix)}


def test_interrupted_clip_writes_nothing_then_a_clip_runs(comfy, object_info, default_layers, make_image, prefix, host):
    sent = []

    def interrupt_in_frame_2(prompt_id, data):
        if data["node"] == "5" and data["value"] >= 5 and not sent:  # 3 steps a frame: frame 2 is running
            sent.append(data["value"])
            comfy.interrupt(prompt_id)

    long = video_graph(object_info, default_layers, make_image(96, 96), prefix + "_cut", 4, steps=3, refresh_steps=200)
    entry = comfy.run(long, timeout=600, on_progress=interrupt_in_frame_2)
    assert sent, "the clip never reported progress"
    assert "interrupted" in execution_error(entry)
    assert not list((host.base / "output").glob(prefix + "_cut*"))
    done = comfy.run(video_graph(object_info, default_layers, make_image(64, 64), prefix, 3, steps=2))
    assert execution_error(done) is None, execution_error(done)
    assert len(output_images(done)) == 3
