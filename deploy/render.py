"""Fill in a deploy/ template from the environment:

    export SBT_ROOT=/srv/sbt SBT_USER=sbt SBT_ENV_FILE=/etc/sbt/env
    python3 deploy/render.py deploy/systemd/sbt-web.service > /etc/systemd/system/sbt-web.service

A placeholder is ``${NAME}``: braces, capitals, digits and underscores. Anything else with a
dollar sign is left alone, so nginx's own variables (``$host``, ``$proxy_add_x_forwarded_for``)
and systemd's specifiers pass through. A placeholder with no environment variable is an error
naming every missing one, never an empty string in a config file. Standard library only: it
runs before any virtual environment exists.
"""

import os
import re
import sys

PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def render(template: str, values: dict[str, str]) -> str:
    """``template`` with each ``${NAME}`` replaced by ``values[NAME]``; ValueError names the missing ones."""
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
    if missing:
        raise ValueError(f"set {', '.join(missing)} (placeholders of the template) in the environment")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python3 deploy/render.py TEMPLATE > DESTINATION")
    with open(sys.argv[1]) as template:
        try:
            sys.stdout.write(render(template.read(), dict(os.environ)))
        except ValueError as error:
            sys.exit(f"{sys.argv[1]}: {error}")


if __name__ == "__main__":
    main()
