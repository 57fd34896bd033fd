"""Engine history under /api/rest_j/v1/linkisManager/ecinfo/ (Linkis' ECResourceInfoRestfulApi)."""

from django.urls import path

from linkismanager.api import ecinfo_views

urlpatterns = [
    path("get", ecinfo_views.GetRecordView.as_view(), name="ecinfo-get"),
    # Linkis maps delete to "delete/{ticketid}}": its clients send a stray "}" after the ticket id.
    # Tried first, so that "<id>}" is not read as a ticket id ending in a brace.
    path("delete/<str:ticketid>}", ecinfo_views.DeleteRecordLinkisView.as_view(), name="ecinfo-delete-linkis"),
    path("delete/<str:ticketid>", ecinfo_views.DeleteRecordView.as_view(), name="ecinfo-delete"),
    path("ecrHistoryList", ecinfo_views.HistoryListView.as_view(), name="ecinfo-history-list"),
    path("ecList", ecinfo_views.EcListView.as_view(), name="ecinfo-ec-list"),
]
