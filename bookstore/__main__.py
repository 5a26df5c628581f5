"""`python -m bookstore catalog|orders|loadgen`: the container's command, and the tests'.

Configuration comes from the environment (see `bookstore.settings`); a bad value stops the
process at once with an ERROR line that says which variable and what is accepted.
"""

from __future__ import annotations

import argparse
import sys

from bookstore import logs
from bookstore.settings import Settings, SettingsError, prepare_data_dir

SERVICES = ("catalog", "orders")


ENVIRONMENT = """environment (services):
  PORT             listen port (default 8080); HOST listen address (default 0.0.0.0)
  LOG_LEVEL        DEBUG | INFO | WARN | ERROR (default INFO)
  LOG_FORMAT       json (default: one JSON object per line) | text (plain lines)
  LOG_SAMPLE_RATE  0..1, share of successful request lines kept (default 1.0)
  FAULT_RATE       0..1, share of requests whose database calls fail (default 0)
  DATA_DIR         writable directory for the services' files (default /tmp/bookstore)
  CATALOG_URL      orders only: where catalog answers (default http://catalog)
  CATALOG_TIMEOUT  orders only: seconds to wait for catalog (default 2)
  READ_TIMEOUT     seconds a client has to send a request head, then its body (default 10)

`python -m bookstore loadgen --help` describes the traffic generator."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["loadgen"]:
        from bookstore import loadgen

        return loadgen.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m bookstore",
        description=__doc__,
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=(*SERVICES, "loadgen"), help="what to run")
    args, rest = parser.parse_known_args(argv)
    if rest:
        parser.error(f"{args.command} takes no arguments (configure it with env vars): {rest}")
    try:
        settings = Settings.from_env()
        prepare_data_dir(settings.data_dir)
    except SettingsError as exc:
        logs.configure(args.command)
        logs.get_logger().error(
            f"{args.command} cannot start: invalid configuration", error=str(exc)
        )
        return 2
    logs.configure(
        args.command,
        level=settings.log_level,
        sample_rate=settings.log_sample_rate,
        log_format=settings.log_format,
    )
    from bookstore import catalog, orders, server

    app = catalog.create_app(settings) if args.command == "catalog" else orders.create_app(settings)
    return server.serve(app, args.command, settings)


if __name__ == "__main__":
    sys.exit(main())
