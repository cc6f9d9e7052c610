"""Cluster management in Django admin: broker nodes, topics and partitions, consumer groups."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html_join

from brokers import services, tasks
from brokers.api import wire
from brokers.api.groups import committed_with_lag
from brokers.models import Broker, CommittedOffset, ConsumerGroup, GroupMember, Partition, Topic
from brokers.topic_config import TOPIC_CONFIGS
from djafka.admin_scoping import TenantScopedAdmin, tenant_of
from djafka.models import Tenant


@admin.register(Broker)
class BrokerAdmin(admin.ModelAdmin):
    """Broker nodes register themselves; operators watch their health here."""

    list_display = ["id", "address", "rack", "state", "is_alive", "last_heartbeat_at", "leading"]
    list_filter = ["state", "rack"]
    search_fields = ["host", "rack"]
    readonly_fields = ["id", "host", "port", "rack", "registered_at", "last_heartbeat_at"]
    actions = ["run_log_maintenance", "reload_metadata"]

    @admin.action(description="Apply retention and compaction now")
    def run_log_maintenance(self, request: HttpRequest, queryset: QuerySet[Broker]) -> None:
        self._send(request, queryset, tasks.run_log_maintenance)

    @admin.action(description="Reload metadata now")
    def reload_metadata(self, request: HttpRequest, queryset: QuerySet[Broker]) -> None:
        self._send(request, queryset, tasks.reload_metadata)

    def _send(self, request: HttpRequest, queryset: QuerySet[Broker], task: object) -> None:
        ids = list(queryset.values_list("id", flat=True))
        for broker_id in ids:
            tasks.send_to_broker(task, broker_id)
        self.message_user(request, f"Sent to broker node(s) {', '.join(map(str, ids))}.")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Broker]:
        return super().get_queryset(request).annotate(_leading=Count("led_partitions"))

    @admin.display(description="address")
    def address(self, broker: Broker) -> str:
        return f"{broker.host}:{broker.port}"

    @admin.display(description="healthy", boolean=True)
    def is_alive(self, broker: Broker) -> bool:
        return broker.is_alive

    @admin.display(description="partitions led", ordering="_leading")
    def leading(self, broker: Broker) -> int:
        return broker._leading

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class PartitionInline(admin.TabularInline):
    model = Partition
    extra = 0
    can_delete = False
    fields = ["index", "leader", "leader_epoch", "replicas", "isr"]
    readonly_fields = fields

    @admin.display(description="replicas")
    def replicas(self, partition: Partition) -> str:
        return ", ".join(str(i) for i in partition.replica_ids) or "not placed yet"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Partition]:
        return super().get_queryset(request).prefetch_related("replicas")

    def has_add_permission(self, request: HttpRequest, obj: Topic | None = None) -> bool:
        return False


class ConfigsField(forms.JSONField):
    """Topic config overrides as a JSON object of Kafka config names."""

    def __init__(self, **kwargs: object):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            'A JSON object, e.g. {"retention.ms": "3600000"}. Known configs: '
            + ", ".join(sorted(TOPIC_CONFIGS)),
        )
        super().__init__(**kwargs)

    def clean(self, value: object) -> dict:
        configs = super().clean(value) or {}
        if not isinstance(configs, dict):
            raise forms.ValidationError("Give a JSON object of config names to values.")
        return configs


class TopicAdminForm(forms.ModelForm):
    """Create or change a topic; the topic services check it, so admin agrees with Kafka."""

    configs = ConfigsField()

    class Meta:
        model = Topic
        fields = ["tenant", "name", "partition_count", "replication_factor", "configs"]

    def __init__(self, *args: object, tenant: Tenant | None = None, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.scoped_tenant = tenant
        if "tenant" in self.fields:
            self.fields["tenant"].queryset = Tenant.objects.filter(is_active=True)

    def clean(self) -> dict:
        data = super().clean()
        tenant = self.scoped_tenant or data.get("tenant")
        if self.errors or tenant is None:
            return data
        try:
            if self.instance.pk is None:
                services.create_topic(
                    tenant,
                    data["name"],
                    data["partition_count"],
                    data["replication_factor"],
                    data.get("configs") or {},
                    validate_only=True,
                )
            else:
                old = Topic.objects.get(pk=self.instance.pk)
                services.alter_topic_configs(
                    old,
                    data.get("configs") or {},
                    set(old.configs) - set(data.get("configs")),
                    validate_only=True,
                )
                if data["partition_count"] != old.partition_count:
                    services.add_partitions(old, data["partition_count"], validate_only=True)
        except services.InvalidTopicConfig as exc:
            self.add_error("configs", [f"{k}: {v}" for k, v in exc.errors.items()])
        except services.TopicError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return data


class AddPartitionsForm(forms.Form):
    partition_count = forms.IntegerField(
        min_value=1, label="New partition count", help_text="The new total for each topic."
    )


@admin.register(Topic)
class TopicAdmin(TenantScopedAdmin):
    form = TopicAdminForm
    list_display = [
        "name",
        "tenant",
        "partition_count",
        "replication_factor",
        "leaders",
        "created_at",
    ]
    list_filter = ["tenant", "replication_factor"]
    search_fields = ["name", "tenant__name"]
    readonly_fields = ["topic_id", "created_at", "effective_configs_table"]
    inlines = [PartitionInline]
    actions = ["add_partitions_action", "delete_topics_action"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Topic]:
        return (
            super()
            .get_queryset(request)
            .select_related("tenant")
            .annotate(_led=Count("partitions__leader"))
        )

    def get_fields(self, request: HttpRequest, obj: Topic | None = None) -> list:
        fields = ["tenant", "name", "partition_count", "replication_factor", "configs"]
        if obj is not None:
            fields += ["topic_id", "created_at", "effective_configs_table"]
        if tenant_of(request) is not None:
            fields.remove("tenant")
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Topic | None = None) -> list:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Kafka cannot rename a topic, move it or change its replication factor in place.
            fields += ["name", "replication_factor"]
            if tenant_of(request) is None:
                fields.append("tenant")
        return fields

    def get_form(self, request: HttpRequest, obj: Topic | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        form_class = super().get_form(request, obj, **kwargs)
        tenant = tenant_of(request)

        class ScopedForm(form_class):  # type: ignore[misc, valid-type]
            def __init__(self, *args: object, **kw: object):
                super().__init__(*args, tenant=tenant, **kw)

        return ScopedForm

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        # Deleting goes through the topic services; Django's bulk delete would skip them.
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="partitions with a leader", ordering="_led")
    def leaders(self, topic: Topic) -> str:
        return f"{topic._led}/{topic.partition_count}"

    @admin.display(description="effective configs")
    def effective_configs_table(self, topic: Topic) -> str:
        return format_html_join(
            "\n",
            "<div><code>{}</code> = <code>{}</code>{}</div>",
            (
                (name, value, " (set on topic)" if name in topic.configs else "")
                for name, value in sorted(topic.effective_configs.items())
            ),
        )

    def save_model(
        self, request: HttpRequest, obj: Topic, form: TopicAdminForm, change: bool
    ) -> None:
        data = form.cleaned_data
        try:
            if not change:
                created = services.create_topic(
                    tenant_of(request) or data["tenant"],
                    data["name"],
                    data["partition_count"],
                    data["replication_factor"],
                    data.get("configs") or {},
                )
                obj.pk = created.pk
                return
            old = Topic.objects.get(pk=obj.pk)
            services.alter_topic_configs(
                old, data.get("configs") or {}, set(old.configs) - set(data.get("configs") or {})
            )
            if data["partition_count"] != old.partition_count:
                services.add_partitions(old, data["partition_count"])
        except services.TopicError as exc:  # a concurrent change since the form was checked
            messages.error(request, exc.message)

    def delete_model(self, request: HttpRequest, obj: Topic) -> None:
        services.delete_topic(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Topic]) -> None:
        for topic in queryset:
            services.delete_topic(topic)

    @admin.action(description="Add partitions to selected topics")
    def add_partitions_action(
        self, request: HttpRequest, queryset: QuerySet[Topic]
    ) -> HttpResponse | None:
        form = AddPartitionsForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            count = form.cleaned_data["partition_count"]
            for topic in queryset:
                try:
                    services.add_partitions(topic, count)
                    self.message_user(request, f"{topic.name} now has {count} partitions.")
                except services.TopicError as exc:
                    self.message_user(request, f"{topic.name}: {exc.message}", messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Add partitions",
            "topics": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/brokers/topic/add_partitions.html", context)

    @admin.action(description="Delete selected topics and their records")
    def delete_topics_action(self, request: HttpRequest, queryset: QuerySet[Topic]) -> None:
        names = sorted(queryset.values_list("name", flat=True))
        self.delete_queryset(request, queryset)
        self.message_user(request, f"Deleted {len(names)} topic(s): {', '.join(names)}.")


class GroupMemberInline(admin.TabularInline):
    model = GroupMember
    extra = 0
    can_delete = False
    fields = [
        "member_id",
        "group_instance_id",
        "client_id",
        "client_host",
        "session_timeout_ms",
        "last_heartbeat_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: ConsumerGroup | None = None) -> bool:
        return False


class CommittedOffsetInline(admin.TabularInline):
    model = CommittedOffset
    extra = 0
    can_delete = False
    fields = ["topic", "partition", "offset", "leader_epoch", "metadata", "committed_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: ConsumerGroup | None = None) -> bool:
        return False


class ResetOffsetsToTimeForm(forms.Form):
    timestamp = forms.SplitDateTimeField(
        label="Time (UTC)",
        help_text="Each partition resumes at its first record at or after this time, or at "
        "its log end if there is none.",
    )


@admin.register(ConsumerGroup)
class ConsumerGroupAdmin(TenantScopedAdmin):
    """Groups are made by their consumers; here they are watched, reset when empty, deleted."""

    list_display = [
        "group_id",
        "tenant",
        "state",
        "protocol_name",
        "generation_id",
        "member_count",
        "updated_at",
    ]
    list_filter = ["tenant", "state"]
    search_fields = ["group_id", "tenant__name"]
    fields = [
        "tenant",
        "group_id",
        "state",
        "protocol_type",
        "protocol_name",
        "generation_id",
        "leader_member_id",
        "state_changed_at",
        "created_at",
        "updated_at",
        "lag_table",
    ]
    readonly_fields = fields
    inlines = [GroupMemberInline, CommittedOffsetInline]
    actions = [
        "reset_offsets_to_earliest",
        "reset_offsets_to_latest",
        "reset_offsets_to_time",
        "delete_committed_offsets",
    ]
    # A group page must render while brokers are down: the log end offsets wait this long.
    lag_timeout_s = 2.0

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConsumerGroup]:
        return super().get_queryset(request).annotate(_members=Count("members"))

    @admin.display(description="members", ordering="_members")
    def member_count(self, group: ConsumerGroup) -> int:
        return group._members

    @admin.display(description="lag")
    def lag_table(self, group: ConsumerGroup) -> str:
        rows = committed_with_lag(group.tenant, group, timeout_s=self.lag_timeout_s)
        if not rows:
            return "No committed offsets."
        return render_to_string(
            "admin/brokers/consumergroup/lag_table.html",
            {"rows": rows, "total": sum(r["lag"] or 0 for r in rows),
             "unknown": any(r["lag"] is None for r in rows)},
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ConsumerGroup | None = None) -> bool:
        # As Kafka's DeleteGroups: only a group with no members can be deleted.
        if obj is not None and obj.members.exists():
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(description="Reset offsets to earliest (empty groups only)")
    def reset_offsets_to_earliest(
        self, request: HttpRequest, queryset: QuerySet[ConsumerGroup]
    ) -> None:
        self._reset_offsets(request, queryset, wire.EARLIEST_TIMESTAMP, "the earliest offsets")

    @admin.action(description="Reset offsets to latest (empty groups only)")
    def reset_offsets_to_latest(
        self, request: HttpRequest, queryset: QuerySet[ConsumerGroup]
    ) -> None:
        self._reset_offsets(request, queryset, wire.LATEST_TIMESTAMP, "the log end offsets")

    @admin.action(description="Reset offsets to a time (empty groups only)")
    def reset_offsets_to_time(
        self, request: HttpRequest, queryset: QuerySet[ConsumerGroup]
    ) -> HttpResponse | None:
        form = ResetOffsetsToTimeForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            moment = form.cleaned_data["timestamp"]
            timestamp_ms = int(moment.timestamp() * 1000)
            self._reset_offsets(request, queryset, timestamp_ms, f"{moment:%Y-%m-%d %H:%M:%S}")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Reset offsets to a time",
            "groups": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/brokers/consumergroup/reset_offsets_to_time.html", context
        )

    @admin.action(description="Delete committed offsets (empty groups only)")
    def delete_committed_offsets(
        self, request: HttpRequest, queryset: QuerySet[ConsumerGroup]
    ) -> None:
        """As kafka-consumer-groups --delete-offsets (OffsetDelete) on an Empty group; the group
        itself goes at its coordinator's next offset expiry pass, as Kafka's does."""
        for group in queryset:
            if not self._is_empty(request, group, "deleted"):
                continue
            deleted, _ = group.committed_offsets.all().delete()
            self.message_user(request, f"{group.group_id}: deleted {deleted} committed offsets.")

    def _is_empty(self, request: HttpRequest, group: ConsumerGroup, done: str) -> bool:
        """Offsets change only while the group is Empty; otherwise say so."""
        if group.state == ConsumerGroup.State.EMPTY and not group.members.exists():
            return True
        self.message_user(
            request,
            f"{group.group_id}: offsets can only be {done} while the group is Empty "
            f"(it is {group.state}); stop its consumers first.",
            messages.ERROR,
        )
        return False

    def _reset_offsets(
        self, request: HttpRequest, queryset: QuerySet[ConsumerGroup], timestamp: int, to: str
    ) -> None:
        """As kafka-consumer-groups --reset-offsets --all-topics --execute: every partition of
        each topic the group has committed offsets for, and only while the group is Empty."""
        for group in queryset.select_related("tenant"):
            if not self._is_empty(request, group, "reset"):
                continue
            topics = Topic.objects.filter(committed_offsets__group=group).distinct()
            partitions = {t.name: list(range(t.partition_count)) for t in topics}
            if not partitions:
                self.message_user(request, f"{group.group_id}: no committed offsets to reset.",
                                  messages.WARNING)
                continue
            try:
                found = wire.list_offsets(group.tenant.name, partitions, timestamp)
                ends = (
                    wire.list_offsets(group.tenant.name, partitions, wire.LATEST_TIMESTAMP)
                    if timestamp >= 0 else found
                )
            except wire.WireError as exc:
                self.message_user(request, f"{group.group_id}: {exc.message}", messages.ERROR)
                continue
            now = timezone.now()
            with transaction.atomic():
                for topic in topics:
                    for partition in partitions[topic.name]:
                        offset = found[topic.name, partition]
                        if offset < 0:  # no record at or after the time: the log end
                            offset = ends[topic.name, partition]
                        CommittedOffset.objects.update_or_create(
                            group=group, topic=topic, partition=partition,
                            defaults={"offset": offset, "leader_epoch": -1, "metadata": "",
                                      "committed_at": now},
                        )
            self.message_user(request, f"{group.group_id}: offsets reset to {to}.")
