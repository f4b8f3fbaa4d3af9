"""``python -m local``: the upload service on this machine, without AWS and without Docker."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from local.emulator import Emulator
from local.faults import TASK_OPERATIONS, parse_delay, parse_fault
from local.gateway import Request, Response

console = Console(soft_wrap=True, highlight=False)
app = typer.Typer(add_completion=False, help=__doc__)


def _refuse_bad_specs(option: str, specs: list[str], parse: Callable[[str], object]) -> None:
    """Exit with status 2 and one line on stderr at the first spec ``parse`` refuses."""
    for spec in specs:
        try:
            parse(spec)
        except ValueError as exc:
            typer.echo(f"Error: {option} {exc}", err=True)
            raise typer.Exit(2) from None


def _report(request: Request, response: Response, seconds: float) -> None:
    colour = "green" if response.status < 400 else "yellow" if response.status < 500 else "red"
    console.print(
        f"{request.method} {request.target} [{colour}]{response.status}[/{colour}] "
        f"{seconds * 1000:.0f} ms requestId={request.request_id}"
    )


@app.command()
def main(
    port: Annotated[int, typer.Option(help="Port of the local API.")] = 3000,
    aws_port: Annotated[int, typer.Option(help="Port of the emulated AWS services.")] = 5000,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Make the tasks' calls of an AWS operation fail: SERVICE:Operation[=ErrorCode] "
            "(repeatable; default error code InternalServerError), "
            "e.g. dynamodb:UpdateItem=ProvisionedThroughputExceededException (the record task). "
            f"The tasks call {', '.join(TASK_OPERATIONS)}.",
            metavar="SERVICE:Operation[=ErrorCode]",
        ),
    ] = None,
    delay: Annotated[
        list[str] | None,
        typer.Option(
            help="Make the tasks' calls of an AWS operation take SECONDS longer (repeatable): "
            "each request waits just before it is sent, so a call can land after its task "
            "timed out, e.g. s3:PutObject=5.",
            metavar="SERVICE:Operation=SECONDS",
        ),
    ] = None,
) -> None:
    """Start local mode: the synthesized stack on emulated AWS services, plus the local API."""
    faults, delays = list(fault or []), list(delay or [])
    _refuse_bad_specs("--fault", faults, parse_fault)
    _refuse_bad_specs("--delay", delays, parse_delay)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    started = time.monotonic()
    console.print("[bold]Upload service, local mode[/bold] (synthesizing or reusing cdk.out ...)")
    emulator = Emulator(
        port=port, aws_port=aws_port, faults=faults, delays=delays, on_response=_report
    )
    try:
        emulator.start()
        assert emulator.assembly is not None
        source = "synthesized" if emulator.assembly.synthesized else "reused"
        console.print(f"Template: {emulator.assembly.directory} ({source})")
        console.print(
            f"Emulated AWS (S3, DynamoDB, Step Functions, Lambda, CloudWatch Logs, KMS): "
            f"{emulator.aws_endpoint}  region us-east-1, any credentials"
        )
        console.print(f"  bucket {emulator.bucket_name}, table {emulator.table_name}")
        for function in emulator.functions:
            console.print(f"  function {function.name} -> {function.handler} (in-process)")
        for machine in emulator.state_machines:
            console.print(f"  state machine {machine.arn}")
        for active in emulator.faults.active():
            console.print(f"[red]Fault injected: every {active.spec} call by the tasks fails[/red]")
        for slow in emulator.faults.active_delays():
            console.print(
                f"[red]Delay injected: every {slow.service}:{slow.operation} call by the tasks "
                f"takes {slow.seconds:g} s longer[/red]"
            )
        console.print(
            "[yellow]Authentication is NOT checked locally "
            "(the API listens on loopback only).[/yellow]"
        )
        elapsed = time.monotonic() - started
        console.print(f"Ready in {elapsed:.1f} s: POST {emulator.api_url}  (Ctrl-C to stop)")
        stop.wait()
    finally:
        console.print("Stopping ...")
        emulator.stop()
    console.print("Stopped.")


if __name__ == "__main__":
    app()
