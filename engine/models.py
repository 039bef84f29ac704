"""Loading a CNN: architecture registry, weight fitting and partial-file support."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .architectures import ARCHITECTURES
from .classes import ClassNames, class_names
from .download import Download, Progress, fetch
from .spec import Layer, ModelSpec, Preprocess, unknown_layer_message
from .weights import read_metadata, read_state_dict


@dataclass
class CNN:
    """A frozen network with its spec, input convention, weights file (name and path), how many stages have
    weights and, when its classifier is loaded, how many classes it has and their names (None when no source
    names them)."""

    spec: ModelSpec
    module: nn.Module
    preprocess: Preprocess
    weights: str
    depth: int
    path: Path | None = None
    classes: int = 0
    class_names: ClassNames | None = None

    def layer(self, name: str) -> Layer:
        """The layer `name`, checked to exist and to be computed by stages that have weights."""
        layer = self.spec.layer(name)
        if layer.stage >= self.depth:
            have = [l.name for l in self.available_layers()]
            raise ValueError(f"Layer {name!r} needs weights that {self.weights} does not contain "
                             f"(a partial file). Layers it covers: {have[0]} ... {have[-1]} "
                             f"({len(have)} layers).")
        return layer

    def names_of(self, layer: str) -> ClassNames | None:
        """The class names `layer`'s channels carry: the classifier's, when it has names; else None."""
        return self.class_names if layer == self.spec.classifier else None

    def available_layers(self) -> list[Layer]:
        return [l for l in self.spec.catalogue() if l.stage < self.depth]

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype


def get_spec(architecture: str | ModelSpec) -> ModelSpec:
    """A registered architecture by name (a spec passes through)."""
    if isinstance(architecture, ModelSpec):
        return architecture
    if architecture not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {architecture!r}; valid: {', '.join(ARCHITECTURES)}.")
    return ARCHITECTURES[architecture]


DOWNLOADS: dict[str, tuple[ModelSpec, Download]] = {
    d.name: (spec, d) for spec in ARCHITECTURES.values() for d in spec.downloads}


def default_weights(spec: ModelSpec, folder: str | Path, progress: Progress | None = None) -> Path | None:
    """The spec's own weights (`spec.default_weights()`: a pip package, torch's cache), else its first
    download in `folder`, fetched there first when it is not there yet; None if it has neither."""
    found = spec.default_weights()
    if found is not None:
        return Path(found)
    if not spec.downloads:
        return None
    try:
        return fetch(spec.downloads[0], folder, progress)
    except ValueError as e:
        raise ValueError(f"{e} Or use {spec.weights_hint}.") from e


POOLING = ("max", "average")
PADDING = ("zeros", "replicate", "reflect")


def load_cnn(architecture: str | ModelSpec, weights: str | Path | None = None,
             preprocessing: str | None = None, pooling: str = "max", padding: str = "zeros",
             dtype: torch.dtype = torch.float32) -> CNN:
    """Builds `architecture` on the CPU and fills it from `weights` (default: the spec's own file).

    Partial files (the first stages only) load; later layers are then reported as unavailable and
    their stages are not allocated. `preprocessing` None picks the input convention from the file
    (see `choose_preprocess`). `pooling` "average" replaces max pooling (smoother style transfer,
    as in Gatys et al.); `padding` sets the border mode of padded convolutions (replicate or reflect
    avoid bright frames). `dtype` is the precision of the weights and of the convolutions (the
    activations objectives read are float32 whatever it is). Must not run under
    `torch.inference_mode()`: the weights take part in backward passes.
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError("load_cnn must run outside torch.inference_mode(): the weights are used by autograd.")
    spec = get_spec(architecture)
    path = weights if weights is not None else spec.default_weights()
    if path is None:
        raise ValueError(f"No weights for {spec.title}. Put {spec.weights_hint} into ComfyUI's models/cnn "
                         f"folder and pick it as the weights file.")
    state = spec.convert_keys(read_state_dict(path))
    name = Path(path).name
    with torch.device("meta"):
        module = spec.build()
        _size_classifier(spec, module, state)
    depth = _fit(spec, module, state, name)
    for stage in spec.stages[depth:]:
        module.set_submodule(stage, nn.Identity())  # no weights for it: never run, never allocated
    module = _materialise(module)
    module.load_state_dict(state, strict=False)
    module.eval().requires_grad_(False).to(dtype)
    _adapt(module, pooling, padding)
    classes = _class_count(spec, module, depth)
    names = class_names(path, read_metadata(path), classes) if classes else None
    return CNN(spec, module, choose_preprocess(spec, path, state, preprocessing), name, depth, Path(path), classes,
               names)


def _size_classifier(spec: ModelSpec, module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Rebuilds the spec's linear classifier with as many outputs as the file's (Places365: 365)."""
    if spec.classifier is None:
        return
    path = spec.layers[spec.classifier]
    layer, weight = module.get_submodule(path), state.get(path + ".weight")
    if (isinstance(layer, nn.Linear) and weight is not None and weight.dim() == 2
            and weight.shape[1] == layer.in_features and weight.shape[0] != layer.out_features):
        module.set_submodule(path, nn.Linear(layer.in_features, weight.shape[0], bias=layer.bias is not None))



def _class_count(spec: ModelSpec, module: nn.Module, depth: int) -> int:
    """The number of outputs of the spec's classifier layer (a Linear or Conv2d), 0 when it has none loaded."""
    if spec.classifier is None or spec.layer(spec.classifier).stage >= depth:
        return 0
    return module.get_submodule(spec.layers[spec.classifier]).weight.shape[0]


PREPROCESS_METADATA = "reverie.preprocess"


def choose_preprocess(spec: ModelSpec, path: str | Path, state: dict[str, torch.Tensor],
                      preprocessing: str | None = None) -> Preprocess:
    """The input convention for these weights: the one asked for, else the one the file's safetensors
    metadata names (`{"reverie.preprocess": "caffe"}`), else what `spec.detect_preprocess` reads from
    the weights themselves, else the spec's default."""
    if preprocessing is None:
        preprocessing = read_metadata(path).get(PREPROCESS_METADATA)
    if preprocessing is not None:
        return spec.preprocessing(preprocessing)
    detected = spec.detect_preprocess(state)
    assert detected is None or detected in spec.preprocess, f"{spec.name}: detected {detected} is not listed"
    return detected or spec.preprocess[0]


def _materialise(module: nn.Module) -> nn.Module:
    """A meta module on the CPU with zeroed tensors: no time spent on random init that weights replace."""
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        for t in (*module.parameters(), *module.buffers()):
            t.zero_()
    return module


def _adapt(module: nn.Module, pooling: str, padding: str) -> None:
    """Average instead of max pooling, a border mode for padded convolutions, no in-place activations."""
    if pooling not in POOLING or padding not in PADDING:
        raise ValueError(f"pooling must be one of {', '.join(POOLING)} and padding one of {', '.join(PADDING)}; "
                         f"got {pooling!r}, {padding!r}.")
    for name, m in list(module.named_modules()):
        if hasattr(m, "inplace"):
            m.inplace = False  # in-place activations would overwrite captured layer outputs
        if isinstance(m, nn.Conv2d) and (m.padding not in ("valid", (0, 0)) or getattr(m, "pads_itself", False)):
            m.padding_mode = padding
        if isinstance(m, nn.MaxPool2d) and pooling == "average":
            module.set_submodule(name, nn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                                    count_include_pad=False))


def _fit(spec: ModelSpec, module: nn.Module, state: dict[str, torch.Tensor], name: str) -> int:
    """Checks that `state` belongs to `spec` and returns how many leading stages it covers."""
    expected = {k: v.shape for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    bad = [f"{k} {tuple(state[k].shape)} (expected {tuple(s)})"
           for k, s in expected.items() if k in state and state[k].shape != s]
    # An extra tensor inside one of the module's own children (vgg19's `features.16.weight` where vgg16
    # has a pool, resnet101's `layer3.6.*`) means another architecture; extra heads (`AuxLogits.*`) are fine.
    children = {name for name, _ in module.named_children()}
    bad += [f"{k} (not in {spec.name})" for k in state
            if k not in expected and not k.endswith("num_batches_tracked") and k.split(".")[0] in children]
    matched = [k for k in expected if k in state]
    if bad or not matched:
        guess = guess_architecture(state, exclude=spec.name)
        hint = f" It looks like a {guess} file: choose architecture {guess!r}." if guess else ""
        detail = f"{len(bad)} tensors have other shapes or names, e.g. {bad[0]}" if bad else \
            f"none of its {len(state)} tensors has a name it expects (e.g. {next(iter(state), 'none')!r})"
        raise ValueError(f"{name} does not fit {spec.title}: {detail}.{hint}")
    depth = 0
    for stage in spec.stages:
        keys = [k for k in expected if k.startswith(stage + ".")]
        if any(k not in state for k in keys):
            break
        depth += 1
    if depth == 0:
        raise ValueError(f"{name} has no weights for the first stage of {spec.title} ({spec.stages[0]}).")
    return depth


def guess_architecture(state: dict[str, torch.Tensor], exclude: str = "") -> str | None:
    """The registered architecture whose tensors best match `state` by name and shape, if any fits."""
    best, best_score = None, 0.0
    for spec in ARCHITECTURES.values():
        if spec.name == exclude:
            continue
        with torch.device("meta"):
            expected = spec.build().state_dict()
        converted = spec.convert_keys(state)
        hits = sum(1 for k, v in converted.items() if k in expected and expected[k].shape == v.shape)
        score = hits / max(len(converted), 1)
        if score > best_score:
            best, best_score = spec.name, score
    return best if best_score >= 0.5 else None


__all__ = ["CNN", "DOWNLOADS", "default_weights", "load_cnn", "get_spec", "choose_preprocess", "guess_architecture", "unknown_layer_message"]
