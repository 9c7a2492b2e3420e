'use strict';
{
    // The store filter's search box (stores.admin.StoreFilter): choosing a store, or
    // clearing the box, opens the list filtered by that store, its other filters kept.
    window.addEventListener('load', function() {
        django.jQuery('select[data-store-filter]').on('change', function() {
            const query = new URLSearchParams(this.dataset.query);
            if (this.value) {
                query.set(this.name, this.value);
            } else {
                query.delete(this.name);
            }
            window.location.search = query.toString();
        });
    });
}
