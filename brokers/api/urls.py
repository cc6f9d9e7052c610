"""REST routes of the brokers app, mounted under /api/v1/."""

from brokers.api.views import TopicViewSet
from djafka.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("topics", TopicViewSet, basename="topic")

urlpatterns = router.urls
