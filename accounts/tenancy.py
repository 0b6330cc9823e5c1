"""Tenancy, decided in one place.

Every page looks records up through :func:`scoped` / :func:`get_for_user`, and every admin
class for tenant-owned rows derives from :class:`accounts.admin.TenantAdmin`, which uses
:func:`admin_scoped`. A user never reaches another company's rows: they get a 404.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404

M = TypeVar("M", bound=models.Model)


def scoped(model_or_queryset: type[M] | models.QuerySet[M], user: Any) -> models.QuerySet[M]:
    """The rows of the user's own company. A user without a company (an operator) sees none here:
    operators work in the admin."""
    queryset = (
        model_or_queryset
        if isinstance(model_or_queryset, models.QuerySet)
        else model_or_queryset._default_manager.all()
    )
    if not getattr(user, "is_authenticated", False) or user.company_id is None:
        return queryset.none()
    return queryset.filter(company_id=user.company_id)


def get_for_user(model_or_queryset: type[M] | models.QuerySet[M], user: Any, pk: uuid.UUID | str) -> M:
    """One record of the user's company by its UUID, or 404, whether it is missing or foreign."""
    try:
        return scoped(model_or_queryset, user).get(pk=pk)
    except (models.ObjectDoesNotExist, ValidationError, ValueError) as exc:
        raise Http404("No such record.") from exc


def admin_scoped(queryset: models.QuerySet[M], user: Any, *, company_field: str = "company") -> models.QuerySet[M]:
    """What a user may see in the admin: everything for operators, their company otherwise."""
    if user.is_superuser:
        return queryset
    if not user.is_company_admin:
        return queryset.none()
    return queryset.filter(**{f"{company_field}_id": user.company_id})


def ensure_same_company(company_id: uuid.UUID, *records: models.Model | None, field: str = "__all__") -> None:
    """Refuse a link between rows of different companies."""
    for record in records:
        if record is not None and getattr(record, "company_id", company_id) != company_id:
            raise ValidationError({field: f"{str(record._meta.verbose_name).capitalize()} belongs to another company."})


def refuse_foreign_links(*, instance: models.Model, action: str, model: type[models.Model],
                         pk_set: set[Any] | None, field: str) -> None:
    """The ``m2m_changed`` half of :func:`ensure_same_company`: refuse adding rows of another
    company to a many-to-many link, from either side (forward, ``instance`` owns the link and
    ``model`` is the other side; reverse, the other way round)."""
    if action != "pre_add" or not pk_set:
        return
    for other in model._default_manager.filter(pk__in=pk_set):
        ensure_same_company(instance.company_id, other, field=field)  # type: ignore[attr-defined]
