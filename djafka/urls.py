"""URL routes: admin, the REST API under /api/v1/, its schema and docs, and the pages."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from brokers.live import views as live_views
from djafka import demo_views, views
from djafka.api import ApiKeyViewSet, WhoAmIView
from djafka.routers import OptionalSlashRouter
from djafka.schema import SchemaView

router = OptionalSlashRouter()
router.register("keys", ApiKeyViewSet, basename="apikey")

api_v1 = [
    path("whoami", WhoAmIView.as_view(), name="whoami"),
    path("", include(router.urls)),
    path("", include("brokers.api.urls")),
]

public = {"authentication_classes": [], "permission_classes": []}

urlpatterns = [
    path("", views.home, name="home"),
    path("live/", live_views.tail, name="live-tail"),
    path("demo/drivers/", demo_views.drivers, name="drivers-demo"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SchemaView.as_view(**public), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", **public), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema", **public), name="redoc"),
]
