from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from ops.metrics import metrics
from ops.views import healthz

from .views import favicon

admin.site.site_header = "Aspire Sync administration"
admin.site.site_title = "Aspire Sync admin"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="crm:contact_list", permanent=False)),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The link a password-reset email carries (sent from the admin): the user chooses their password.
    path("password/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("password/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
    path("", include("accounts.urls")),
    path("", include("crm.urls")),
    path("", include("mailsync.urls")),
    path("", include("activities.urls")),
    path("", include("calendarsync.urls")),
]
