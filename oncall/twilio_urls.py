"""Twilio's webhooks for pages, under /twilio/ (the reply surfaces live in warroom)."""

from django.urls import path

from oncall import twilio_views

urlpatterns = [
    path("status/sms/<int:page_id>/", twilio_views.sms_status, name="twilio-status-sms"),
    path("status/voice/<int:page_id>/", twilio_views.voice_status, name="twilio-status-voice"),
    path("voice/<int:page_id>/", twilio_views.voice_twiml, name="twilio-voice"),
]
