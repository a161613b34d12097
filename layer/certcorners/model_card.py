"""What a model package holds, shared by the exporter (training) and the model store (serving)."""

CARD_FILE = "model_card.json"
FLOAT_MODEL_FILE = "model.tflite"
INT8_MODEL_FILE = "model-int8.tflite"
SHA256_METADATA_KEY = "sha256"  # S3 user metadata: x-amz-meta-sha256 of model.tar.gz
