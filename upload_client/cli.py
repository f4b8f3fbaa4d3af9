"""Upload one file to the upload service: inline when small, through a session when large.

The API is the stack's (--stack-name reads its ApiUrl output) or --api-url, either its ApiUrl
(.../prod/upload) or the stage's base URL. Requests are signed with SigV4 and the standard AWS
credential chain, or carry --api-key (UPLOAD_API_KEY) on a stack deployed with apiKey auth.
A session upload that stops can be continued with --resume UPLOAD_ID: parts already stored
with the same bytes are not sent again.

Exit status:

  0    uploaded: the stored file is described on stdout (--json: the service's answer as JSON)
  1    the service refused the request (4xx: a field at fault, a file too large, a session that
       is not open any more); the file was not stored
  2    usage error: bad options or price, no API URL, no AWS credentials, a file that cannot be
       read or is not the one of the session to resume
  3    the service failed, kept throttling or could not be reached, after retries; a session
       upload names the command that continues it
  4    storage refused a part: the file changed on disk while it was sent, or the session was
       aborted
  130  interrupted (Ctrl-C); a session upload names the command that continues it
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, NoReturn

import boto3
import requests
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ops.logs import DiscoveryError, stack_outputs
from upload_client.api import upload_file
from upload_client.errors import (
    ConfigurationError,
    RequestRefused,
    ServiceFailed,
    StorageRefused,
    UploadClientError,
    UploadInterrupted,
)
from upload_client.models import UploadResult, encode

EXIT_REFUSED: Final = 1
EXIT_USAGE: Final = 2
EXIT_FAILED: Final = 3
EXIT_STORAGE: Final = 4
EXIT_INTERRUPTED: Final = 130
DEFAULT_PARALLEL: Final = 8
API_KEY_ENV: Final = "UPLOAD_API_KEY"

app = typer.Typer(add_completion=False, rich_markup_mode=None)
# Click rewraps every paragraph of a help text but one marked with \b: the table keeps its lines.
HELP: Final = str(__doc__).replace("Exit status:\n\n", "Exit status:\n\n\b\n")


@dataclass(frozen=True)
class Options:
    """The command line, as needed to run it and to print the command that resumes it."""

    path: Path
    product_id: str
    product_name: str
    price: str
    file_name: str | None
    content_type: str | None
    api_url: str | None
    stack_name: str | None
    api_key: str | None
    as_json: bool
    parallel: int
    quiet: bool

    def resume_command(self, upload_id: str) -> str:
        """The command that continues session ``upload_id``, the API key left to the shell."""
        words = ["upload-file", str(self.path), "--product-id", self.product_id]
        words += ["--product-name", self.product_name, "--price", self.price]
        named = {
            "--file-name": self.file_name,
            "--content-type": self.content_type,
            "--api-url": self.api_url,
            "--stack-name": self.stack_name,
        }
        words += [word for name, value in named.items() if value for word in (name, value)]
        if self.parallel != DEFAULT_PARALLEL:
            words += ["--parallel", str(self.parallel)]
        words += [flag for flag, on in (("--json", self.as_json), ("--quiet", self.quiet)) if on]
        command = shlex.join([*words, "--resume", upload_id])
        # Never the key itself: a secret must not land in a terminal's scrollback.
        return command + f' --api-key "${API_KEY_ENV}"' if self.api_key else command


def exit_code(error: UploadClientError) -> int:
    if isinstance(error, ConfigurationError):
        return EXIT_USAGE
    if isinstance(error, RequestRefused):
        return EXIT_REFUSED
    if isinstance(error, StorageRefused):
        return EXIT_STORAGE
    return EXIT_FAILED


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _interrupted(message: str) -> NoReturn:
    typer.echo(f"Interrupted: {message}", err=True)
    raise typer.Exit(EXIT_INTERRUPTED)


def _report(error: UploadClientError, options: Options) -> NoReturn:
    """One line for the failure (code, status, request id), one more per field at fault."""
    facts = [error.code]
    if error.status is not None:
        facts.append(f"HTTP {error.status}")
    if error.request_id:
        facts.append(f"request {error.request_id}")
    line = f"{error} ({', '.join(facts)})"
    if isinstance(error, ServiceFailed) and error.upload_id:
        command = options.resume_command(error.upload_id)
        line += f"; upload {error.upload_id} is still open; to continue: {command}"
    typer.echo(f"Error: {line}", err=True)
    for detail in error.details:
        typer.echo(f"  {detail.field}: {detail.message}", err=True)
    raise typer.Exit(exit_code(error))


def _api_url(options: Options) -> str:
    """``--api-url``, or the ``ApiUrl`` output of ``--stack-name``."""
    if (options.api_url is None) == (options.stack_name is None):
        _fail("give exactly one of --api-url and --stack-name", EXIT_USAGE)
    if options.api_url is not None:
        return options.api_url
    stack = str(options.stack_name)
    try:
        url = stack_outputs(boto3.session.Session(), stack).get("ApiUrl")
    except DiscoveryError as exc:
        _fail(str(exc), EXIT_USAGE)
    if not url:
        _fail(f"stack {stack} has no ApiUrl output", EXIT_USAGE)
    return url


def _ignore(_nbytes: int) -> None:
    """No progress display."""


@contextmanager
def _progress_bar(total: int, shown: bool) -> Iterator[Callable[[int], None]]:
    """A bar on stderr with bytes, bytes/s and the time left; a no-op when not ``shown``."""
    if not shown:
        yield _ignore
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("uploading", total=total)
        yield lambda nbytes: bar.advance(task, nbytes)


def _print_result(result: UploadResult, as_json: bool) -> None:
    if as_json:
        typer.echo(encode(result).decode("utf-8"))
        return
    typer.echo(f"Uploaded {result.file_name} ({result.size:,} bytes) to {result.s3_key}")
    typer.echo(f"  version  {result.version_id}")
    if result.sha256:
        typer.echo(f"  sha256   {result.sha256}")
    if result.checksum:
        checksum = result.checksum
        typer.echo(f"  checksum {checksum.algorithm} {checksum.type} {checksum.value}")
    typer.echo(f"  request  {result.request_id}")


def _run(options: Options, resume: str | None) -> None:
    api_url = _api_url(options)
    shown = not (options.quiet or options.as_json)
    with _progress_bar(options.path.stat().st_size, shown) as progress:
        result = upload_file(
            options.path,
            product_id=options.product_id,
            product_name=options.product_name,
            price=options.price,
            api_url=api_url,
            file_name=options.file_name,
            content_type=options.content_type,
            api_key=options.api_key,
            parallel=options.parallel,
            resume=resume,
            progress=progress,
        )
    _print_result(result, options.as_json)


# The options, as named types: the command's signature reads as its usage line.
File = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The file.")]
ProductId = Annotated[str, typer.Option("--product-id", help="The product's id.")]
ProductName = Annotated[str, typer.Option("--product-name", help="The product's name.")]
Price = Annotated[str, typer.Option("--price", help="A decimal number, kept digit for digit.")]
FileName = Annotated[
    str | None, typer.Option("--file-name", help="The stored name (default: the file's).")
]
ContentType = Annotated[
    str | None, typer.Option("--content-type", help="Default: detected by the service.")
]
ApiUrl = Annotated[
    str | None, typer.Option("--api-url", help="The stack's ApiUrl, or the stage's URL.")
]
StackName = Annotated[
    str | None, typer.Option("--stack-name", help="Read ApiUrl from this stack's outputs.")
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar=API_KEY_ENV, help="The API key (apiKey auth).")
]
AsJson = Annotated[bool, typer.Option("--json", help="The answer as JSON on stdout.")]
Resume = Annotated[
    str | None, typer.Option("--resume", metavar="UPLOAD_ID", help="Continue this open session.")
]
Parallel = Annotated[int, typer.Option("--parallel", min=1, max=64, help="Parts sent at once.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@app.command(help=HELP)
def main(
    path: File,
    product_id: ProductId,
    product_name: ProductName,
    price: Price,
    file_name: FileName = None,
    content_type: ContentType = None,
    api_url: ApiUrl = None,
    stack_name: StackName = None,
    api_key: ApiKeyOption = None,
    as_json: AsJson = False,
    resume: Resume = None,
    parallel: Parallel = DEFAULT_PARALLEL,
    quiet: Quiet = False,
) -> None:
    options = Options(
        path=path,
        product_id=product_id,
        product_name=product_name,
        price=price,
        file_name=file_name,
        content_type=content_type,
        api_url=api_url,
        stack_name=stack_name,
        api_key=api_key,
        as_json=as_json,
        parallel=parallel,
        quiet=quiet,
    )
    try:
        _run(options, resume)
    except UploadInterrupted as stop:
        command = options.resume_command(stop.upload_id)
        _interrupted(f"upload {stop.upload_id} is still open; to continue: {command}")
    except KeyboardInterrupt:
        _interrupted("nothing more was sent")
    except UploadClientError as error:
        _report(error, options)
    except requests.RequestException as exc:  # its text may hold a presigned URL: name it only
        _fail(f"the request failed ({type(exc).__name__})", EXIT_FAILED)
    except OSError as exc:
        _fail(f"{exc.strerror or type(exc).__name__}: {exc.filename or options.path}", EXIT_USAGE)
