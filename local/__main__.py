"""``python -m local``: the upload service on this machine, without AWS and without Docker."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from local.assembly import SynthError
from local.emulator import API_PORT, AWS_PORT, Emulator, PortUnavailable
from local.faults import TASK_OPERATIONS, Injection, parse_delay, parse_fault
from local.gateway import Request, Response
from local.scheduler import Sweeper
from local.template import REGION
from tasks.contract import names

console = Console(soft_wrap=True, highlight=False)
app = typer.Typer(add_completion=False, help=__doc__)

# The longest --sweep-interval or --orphan-grace (about 31 years): within what a thread can wait
# for and what the sweep's timedelta holds.
MAX_SECONDS = 1_000_000_000
MAX_PORT = 65535
# The option, and the Makefile's variable, that choose each port.
PORT_CHOICES = {API_PORT: ("--port", "PORT"), AWS_PORT: ("--aws-port", "AWS_PORT")}
# What the AWS CLI and boto3 read (AWS_ENDPOINT_URL: botocore 1.31, AWS CLI 1.29 and 2.13 on).
CLIENT_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


class Interrupted(BaseException):
    """SIGINT or SIGTERM while local mode starts. A BaseException, as KeyboardInterrupt: no
    ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Signals:
    """SIGINT and SIGTERM. While local mode starts they interrupt the start at once, a synth in
    progress included (:meth:`interrupting`); once it runs, they ask it to stop (:attr:`stop`)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._interrupting = False
        signal.signal(signal.SIGINT, self._received)
        signal.signal(signal.SIGTERM, self._received)

    def _received(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
        if self._interrupting:
            self._interrupting = False  # a second signal, during the clean-up, only asks to stop
            raise Interrupted(signum)

    @contextmanager
    def interrupting(self) -> Iterator[None]:
        self._interrupting = True
        try:
            yield
        finally:
            self._interrupting = False


def _refuse_bad_specs(option: str, specs: list[str], parse: Callable[[str], object]) -> None:
    """Exit with status 2 and one line on stderr at the first spec ``parse`` refuses."""
    for spec in specs:
        try:
            parse(spec)
        except ValueError as exc:
            typer.echo(f"Error: {option} {exc}", err=True)
            raise typer.Exit(2) from None


def _seconds(option: str, value: str, *, zero: str | None = None) -> float:
    """``value`` in seconds, else exit with status 2 and one line on stderr. Zero is taken only
    when ``zero`` says what it means."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds) and (0 < seconds <= MAX_SECONDS or (zero and seconds == 0)):
        return seconds
    wanted = f"0 ({zero}) or a number above 0" if zero else "a number above 0"
    typer.echo(
        f"Error: {option} {value}: SECONDS must be {wanted}, at most {MAX_SECONDS}", err=True
    )
    raise typer.Exit(2)


def _refuse_bad_ports(port: int, aws_port: int) -> None:
    """Exit with status 2 and one line on stderr unless both are ports, and not the same one."""
    for option, value in (("--port", port), ("--aws-port", aws_port)):
        if not 0 <= value <= MAX_PORT:
            typer.echo(
                f"Error: {option} {value}: PORT must be 0 (any free port) to {MAX_PORT}", err=True
            )
            raise typer.Exit(2)
    if port == aws_port != 0:
        typer.echo(
            f"Error: --port and --aws-port are both {port}: the local API and the emulated AWS "
            "services need a port each",
            err=True,
        )
        raise typer.Exit(2)


def port_refusal(unavailable: PortUnavailable) -> str:
    """One line: which port, what it is for, and how to choose another."""
    option, variable = PORT_CHOICES[unavailable.role]
    return f"Error: {unavailable}; choose another with {option} PORT (make local {variable}=PORT)"


def _client_environment(aws_endpoint: str) -> dict[str, str]:
    """The variables that point the AWS CLI and boto3 at the emulated services, without any AWS
    configuration on the machine."""
    return {
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        **CLIENT_CREDENTIALS,
    }


def _storage_lines(emulator: Emulator) -> list[str]:
    """Every bucket and table of the template, the service's own by their role first."""
    roles = [
        ("idempotency table", emulator.idempotency_table_name),
        ("ledger table", emulator.ledger_table_name),
        ("upload sessions table", emulator.sessions_table_name),
    ]
    lines = [f"  bucket {emulator.bucket_name}, table {emulator.table_name}"]
    lines += [f"  {role} {name}" for role, name in roles]
    listed = {emulator.bucket_name, emulator.table_name, *(name for _, name in roles)}
    buckets, tables = emulator.provisioned.buckets.values(), emulator.provisioned.tables.values()
    lines += [f"  bucket {name}" for name in sorted(buckets) if name not in listed]
    lines += [f"  table {name}" for name in sorted(tables) if name not in listed]
    return lines


def _sweep_line(sweeper: Sweeper, interval: float, aws_endpoint: str) -> str:
    """What the background sweep does: how often, with which grace period, deleting or not."""
    grace = sweeper.grace_seconds
    if not interval:
        return (
            "Orphan sweep: off (--sweep-interval 0); on demand: upload-ops orphans "
            f"--endpoint-url {aws_endpoint} --grace {math.ceil(grace)}s"
        )
    does = "reports and deletes orphans" if sweeper.deletes else "reports orphans, deletes none"
    flag = "on" if sweeper.deletes else "off"
    return (
        f"Orphan sweep: every {interval:g} s, grace {grace:g} s "
        f"({does}: sweepDeletesOrphans is {flag})"
    )


def _whose(injection: Injection) -> str:
    """The calls an injection affects, in words."""
    calls = f"every {injection.service}:{injection.operation} call"
    return f"{calls} by the {injection.task} task" if injection.task else f"{calls} by the tasks"


def _report(request: Request, response: Response, seconds: float) -> None:
    colour = "green" if response.status < 400 else "yellow" if response.status < 500 else "red"
    console.print(
        f"{request.method} {request.target} [{colour}]{response.status}[/{colour}] "
        f"{seconds * 1000:.0f} ms requestId={request.request_id}"
    )


Port = Annotated[int, typer.Option(help="Port of the local API.")]
AwsPort = Annotated[int, typer.Option(help="Port of the emulated AWS services.")]
FaultSpecs = Annotated[
    list[str] | None,
    typer.Option(
        "--fault",
        help="Make the tasks' calls of an AWS operation fail: "
        "[TASK/]SERVICE:Operation[=ErrorCode] (repeatable; default error code "
        "InternalServerError; with TASK/, only that task's calls, the others' succeed), "
        "e.g. record/dynamodb:TransactWriteItems or store/s3:PutObject=SlowDown. "
        f"The tasks: {', '.join(names.TASKS)}. "
        f"They call {', '.join(TASK_OPERATIONS)}.",
        metavar="[TASK/]SERVICE:Operation[=ErrorCode]",
    ),
]
DelaySpecs = Annotated[
    list[str] | None,
    typer.Option(
        "--delay",
        help="Make the tasks' calls of an AWS operation take SECONDS longer: "
        "[TASK/]SERVICE:Operation=SECONDS (repeatable; with TASK/, only that task's calls, "
        "as for --fault): each request waits just before it is sent, so a call can land "
        "after its task timed out, e.g. s3:PutObject=5 or compensate/s3:DeleteObject=5.",
        metavar="[TASK/]SERVICE:Operation=SECONDS",
    ),
]
SweepInterval = Annotated[
    str,
    typer.Option(
        help="Run the orphan sweep (the sweep function, as its schedule does on AWS) every "
        "SECONDS in the background; 0: never (upload-ops orphans runs it on demand).",
        metavar="SECONDS",
    ),
]
OrphanGrace = Annotated[
    str,
    typer.Option(
        help="The sweep's grace period: it leaves alone what is younger than SECONDS "
        "(on AWS: the stack's orphanGraceMinutes).",
        metavar="SECONDS",
    ),
]


def _print_started(emulator: Emulator, interval: float) -> None:
    """What runs where: the template, the emulated resources, faults, the sweep."""
    assert emulator.assembly is not None
    source = "synthesized" if emulator.assembly.synthesized else "reused"
    console.print(f"Template: {emulator.assembly.directory} ({source})")
    console.print(
        f"Emulated AWS (S3, DynamoDB, Step Functions, Lambda, CloudWatch Logs, KMS): "
        f"{emulator.aws_endpoint}  region {REGION}, any credentials"
    )
    for line in _storage_lines(emulator):
        console.print(line)
    for function in emulator.functions:
        console.print(f"  function {function.name} -> {function.handler} (in-process)")
    for machine in emulator.state_machines:
        console.print(f"  state machine {machine.arn}")
    for active in emulator.faults.active():
        console.print(f"[red]Fault injected: {_whose(active)} fails with {active.error_code}[/red]")
    for slow in emulator.faults.active_delays():
        console.print(f"[red]Delay injected: {_whose(slow)} takes {slow.seconds:g} s longer[/red]")
    assert emulator.sweeper is not None
    console.print(_sweep_line(emulator.sweeper, interval, emulator.aws_endpoint))
    console.print(
        "[yellow]Authentication is NOT checked locally (the API listens on loopback only).[/yellow]"
    )
    console.print("Local data lives in memory: it is gone when local mode stops.")
    console.print(
        "For the AWS CLI and boto3, in a shell used for nothing else "
        "(every AWS client there reaches local mode):"
    )
    variables = _client_environment(emulator.aws_endpoint)
    console.print("export " + " ".join(f"{name}={value}" for name, value in variables.items()))


def _start(emulator: Emulator, signals: Signals) -> None:
    """Start ``emulator``, or exit: one line on stderr for a port that is taken (status 2), a
    failed synth (1), or a signal before it was ready (128 + the signal's number)."""
    try:
        with signals.interrupting():
            emulator.check_ports()  # before the synth, which can take a minute
            console.print(
                "[bold]Upload service, local mode[/bold] (synthesizing or reusing cdk.out ...)"
            )
            emulator.start()
    except PortUnavailable as unavailable:
        typer.echo(port_refusal(unavailable), err=True)
        raise typer.Exit(2) from None
    except SynthError as failed:
        typer.echo(f"Error: {failed}", err=True)
        raise typer.Exit(1) from None
    except Interrupted as interrupted:
        emulator.stop()  # the signal may have come just after the start
        typer.echo("Stopped before local mode was ready; nothing is left running.", err=True)
        raise typer.Exit(128 + interrupted.signum) from None


@app.command()
def main(
    port: Port = 3000,
    aws_port: AwsPort = 5000,
    fault: FaultSpecs = None,
    delay: DelaySpecs = None,
    sweep_interval: SweepInterval = "30",
    orphan_grace: OrphanGrace = "60",
) -> None:
    """Start local mode: the synthesized stack on emulated AWS services, plus the local API."""
    faults, delays = list(fault or []), list(delay or [])
    _refuse_bad_specs("--fault", faults, parse_fault)
    _refuse_bad_specs("--delay", delays, parse_delay)
    interval = _seconds("--sweep-interval", sweep_interval, zero="no background sweep")
    grace = _seconds("--orphan-grace", orphan_grace)
    _refuse_bad_ports(port, aws_port)

    signals = Signals()
    started = time.monotonic()
    emulator = Emulator(
        port=port,
        aws_port=aws_port,
        faults=faults,
        delays=delays,
        on_response=_report,
        sweep_interval=interval,
        orphan_grace=grace,
    )
    _start(emulator, signals)
    try:
        _print_started(emulator, interval)
        elapsed = time.monotonic() - started
        console.print(f"Ready in {elapsed:.1f} s: POST {emulator.api_url}  (Ctrl-C to stop)")
        signals.stop.wait()
    finally:
        console.print("Stopping ...")
        emulator.stop()
    console.print("Stopped.")


if __name__ == "__main__":
    app()
