from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.decorators.http import require_safe
from django.views.generic import RedirectView

from accounts.http import require_safe_or_post
from ops.metrics import metrics
from ops.views import healthz

from .views import favicon

admin.site.site_header = "Aspire Sync administration"
admin.site.site_title = "Aspire Sync admin"

# Django's views answer some methods they do not serve (a redirect any method; the sign-in page a
# PUT as a POST, or a redirect for whoever is signed in): these say which they serve by the rules
# of accounts.http, as ours do.
urlpatterns = [
    path("", require_safe(RedirectView.as_view(pattern_name="crm:contact_list", permanent=False))),
    path("login/", require_safe_or_post(auth_views.LoginView.as_view(redirect_authenticated_user=True)), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only, as Django makes it
    # The link a password-reset email carries (sent from the admin): the user chooses their password.
    path("password/<uidb64>/<token>/", require_safe_or_post(auth_views.PasswordResetConfirmView.as_view()),
         name="password_reset_confirm"),
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
