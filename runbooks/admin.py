from django import forms
from django.contrib import admin

from runbooks import actions, templating
from runbooks.graphs import GraphTemplateError, check_url_template
from runbooks.models import Action, ActionRun, GraphTemplate, Runbook, RunbookVersion


class RunbookVersionInline(admin.TabularInline):
    model = RunbookVersion
    fields = ("number", "title", "author", "at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Runbook)
class RunbookAdmin(admin.ModelAdmin):
    list_display = ("title", "service", "position", "version", "updated_at")
    inlines = [RunbookVersionInline]

    def save_model(self, request, obj, form, change):
        obj.save(author=request.user)  # keeps a version, by this person


class ActionForm(forms.ModelForm):
    """The API's checks, in the admin too: fixed http(s) URL and headers, a valid template."""

    class Meta:
        model = Action
        fields = [
            "runbook",
            "name",
            "description",
            "method",
            "url",
            "content_type",
            "payload_template",
            "headers",
            "timeout_seconds",
            "role",
        ]

    def clean_url(self):
        try:
            return actions.check_url(self.cleaned_data["url"])
        except actions.ActionError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_headers(self):
        try:
            return actions.check_headers(self.cleaned_data["headers"] or {})
        except actions.ActionError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        try:
            templating.check_template(
                data.get("payload_template", ""), data.get("content_type", templating.JSON)
            )
        except templating.TemplateError as exc:
            self.add_error("payload_template", str(exc))
        return data


@admin.register(Action)
class ActionAdmin(admin.ModelAdmin):
    form = ActionForm
    list_display = ("name", "runbook", "method", "role", "timeout_seconds")


@admin.register(ActionRun)
class ActionRunAdmin(admin.ModelAdmin):
    list_display = (
        "action_name",
        "incident",
        "requested_by",
        "status",
        "http_status",
        "created_at",
    )
    list_filter = ("status",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class GraphTemplateForm(forms.ModelForm):
    class Meta:
        model = GraphTemplate
        fields = ["service", "name", "url_template", "image_url_template", "position"]

    def _template(self, name: str) -> str:
        value = self.cleaned_data[name]
        if not value and name == "image_url_template":
            return value
        try:
            return check_url_template(value)
        except GraphTemplateError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_url_template(self):
        return self._template("url_template")

    def clean_image_url_template(self):
        return self._template("image_url_template")


@admin.register(GraphTemplate)
class GraphTemplateAdmin(admin.ModelAdmin):
    form = GraphTemplateForm
    list_display = ("name", "service", "position")
