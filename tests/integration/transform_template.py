"""Run by the SAM CLI's own Python (.venv-sam): the template as SAM's translator turns it into
CloudFormation, as `sam validate` and the AWS::Serverless transform do. Prints JSON.

    .venv-sam/bin/python tests/integration/transform_template.py template.yaml '{"Param": "v"}' \
        '{"InferenceLayerX86": "s3://bucket/layer-2"}'
    .venv-sam/bin/python tests/integration/transform_template.py template.yaml --serve

The third argument gives resources the code location `sam package` would (a new upload has a
new key); the rest get s3://bucket/key.
"""

import json
import sys
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; the template names none by name."""

    def load(self):
        return {}



def transformed(text: str, parameters: dict, locations: dict) -> dict:
    template = yaml_parse(text)
    for name, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                # as sam validate does: the code is not read
                properties[key] = locations.get(name, "s3://bucket/key")
    return transform(template, parameters, NoManagedPolicies())


if sys.argv[2:3] == ["--serve"]:  # one [parameters, locations] a line in, one template out
    text = Path(sys.argv[1]).read_text()
    for line in sys.stdin:
        parameters, locations = json.loads(line)
        print(json.dumps(transformed(text, parameters, locations), default=str), flush=True)
else:
    print(json.dumps(transformed(Path(sys.argv[1]).read_text(),
                                 json.loads(sys.argv[2]) if len(sys.argv) > 2 else {},
                                 json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}),
                     default=str))
