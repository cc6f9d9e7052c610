"""REST routes of the brokers app, mounted under /api/v1/."""

from django.urls import re_path

from brokers.api.group_members import (
    MemberAssignmentView,
    MemberDetailView,
    MemberListView,
    MemberOffsetsView,
    MemberRecordsView,
)
from brokers.api.groups import GroupDetailView, GroupListView
from brokers.api.records import PartitionRecordsView, ProduceView, TopicPartitionsView
from brokers.api.views import TopicViewSet
from djafka.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("topics", TopicViewSet, basename="topic")

urlpatterns = [
    *router.urls,
    re_path(r"^topics/(?P<name>[^/]+)/records/?$", ProduceView.as_view(), name="topic-records"),
    re_path(
        r"^topics/(?P<name>[^/]+)/partitions/?$",
        TopicPartitionsView.as_view(),
        name="topic-partitions",
    ),
    re_path(
        r"^topics/(?P<name>[^/]+)/partitions/(?P<partition>[0-9]+)/records/?$",
        PartitionRecordsView.as_view(),
        name="partition-records",
    ),
    re_path(r"^groups/?$", GroupListView.as_view(), name="group-list"),
    re_path(r"^groups/(?P<group_id>[^/]+)/?$", GroupDetailView.as_view(), name="group-detail"),
    re_path(
        r"^groups/(?P<group_id>[^/]+)/members/?$", MemberListView.as_view(), name="group-members"
    ),
    re_path(
        r"^groups/(?P<group_id>[^/]+)/members/(?P<member_id>[^/]+)/?$",
        MemberDetailView.as_view(),
        name="group-member",
    ),
    re_path(
        r"^groups/(?P<group_id>[^/]+)/members/(?P<member_id>[^/]+)/records/?$",
        MemberRecordsView.as_view(),
        name="group-member-records",
    ),
    re_path(
        r"^groups/(?P<group_id>[^/]+)/members/(?P<member_id>[^/]+)/offsets/?$",
        MemberOffsetsView.as_view(),
        name="group-member-offsets",
    ),
    re_path(
        r"^groups/(?P<group_id>[^/]+)/members/(?P<member_id>[^/]+)/assignment/?$",
        MemberAssignmentView.as_view(),
        name="group-member-assignment",
    ),
]
