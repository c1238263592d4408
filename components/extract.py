from kfp import dsl
from kfp.dsl import Input, Model, Output

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def extract(checkpoint: Input[Model], backbone: Output[Model], config: str = "", cfg_options: list = []):
    """Training checkpoint -> backbone state dict + backbone.json; `config` for checkpoints from elsewhere."""
    from ssl_lib.stages.extract import extract as run

    backbone.metadata.update(run(checkpoint=checkpoint.path, output=backbone.path, config=config,
                                 cfg_options=cfg_options))
