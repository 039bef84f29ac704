"""POST /interrupt stops a long dream mid-way; the next prompt runs normally."""
from graphs import dream_graph
from run_workflow import execution_error


def test_interrupt_then_next_prompt_runs(comfy, object_info, default_layers, make_image, prefix):
    """A 10,000-step dream is interrupted after its second step; a 2-step one then succeeds."""
    sent = []

    def interrupt_at_step_2(prompt_id, data):
        if data["node"] == "4" and data["value"] >= 2 and not sent:
            sent.append(data["value"])
            comfy.interrupt(prompt_id)

    long = dream_graph(object_info, default_layers, make_image(256, 256), prefix + "_long", steps=10000)
    entry = comfy.run(long, timeout=600, on_progress=interrupt_at_step_2)
    assert sent, "the dream never reported progress"
    assert entry["status"]["status_str"] == "error"
    assert "interrupted" in execution_error(entry)
    after = comfy.run(dream_graph(object_info, default_layers, make_image(64, 64), prefix, steps=2))
    assert execution_error(after) is None, execution_error(after)
