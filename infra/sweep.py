"""The orphan sweep's schedule: EventBridge Scheduler invokes the sweep function every few
minutes (tasks/sweep.py says what it does; the function and its grants are in infra/functions.py).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from constructs import Construct

from infra.compliance import acknowledge
from infra.functions import TaskFunction, logical_id
from tasks.contract.ledger import SWEEP_INTERVAL_MINUTES


class SweepSchedule(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, sweep: TaskFunction) -> None:
        super().__init__(scope, construct_id)
        # The scheduler's own role, for this one function only (the target grants it the
        # invoke permission).
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="EventBridge Scheduler: invoke the upload service's orphan sweep",
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(SWEEP_INTERVAL_MINUTES)),
            target=targets.LambdaInvoke(
                sweep.function,
                # The schedule's execution id names the run in the sweep's logs.
                input=scheduler.ScheduleTargetInput.from_object(
                    {"requestId": scheduler.ContextAttribute.execution_id}
                ),
                role=role,
                # A failed run is not repeated: the next one, minutes later, does the same work.
                retry_attempts=0,
            ),
            description="Upload service: find what no compensation accounted for",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{logical_id(sweep.function)}.Arn>:*]",
            "versions and aliases of the one sweep function (the scheduler target's grant of "
            "lambda:InvokeFunction); nothing else is invocable.",
        )
