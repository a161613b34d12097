"""Runs function/batch.py as the state machine's task would, in the bare interpreter beside
the built layer: one batch event a line on stdin, its answer a line on stdout (the model stays
loaded between batches, as in a warm Lambda)."""

import json
import os
import sys

if __package__ in (None, ""):  # run as a script beside the built layer
    import proxy
else:
    from certcorners_tools import proxy


def main() -> None:
    # The function's logs and metrics go to stdout, as in Lambda: here they go to stderr, and
    # stdout carries only the answers.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import batch  # the function, from the built function folder on the path

    for line in sys.stdin:
        answer = batch.lambda_handler(json.loads(line), proxy.LambdaContext())
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
