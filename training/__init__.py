"""The training module: `python -m training <step>` (training/__main__.py)."""

# What a training run leaves in its folder: its best network (export, recard and recipes read
# it). Here, not in training.fit, so that reading it imports no Keras.
RUN_MODEL_FILE = "model.keras"
